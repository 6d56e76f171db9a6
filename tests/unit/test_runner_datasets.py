"""Sharding, dataset readers and the predictions store of the runner (pure file I/O in tmp_path)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from assay.runner.datasets import DatasetError, open_dataset, shard_range
from assay.runner.predictions import (
    PredictionsError,
    PredictionWriter,
    read_predictions,
    shard_file_name,
    shard_files,
    written_prefix,
)


@pytest.mark.parametrize("total", [0, 1, 7, 64, 899, 1000])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_shards_are_contiguous_cover_everything_and_differ_by_at_most_one(total: int, count: int) -> None:
    ranges = [shard_range(total, index, count) for index in range(count)]
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_shard_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        shard_range(10, 4, 4)


def _write_jsonl(path: Path, records: list[dict[str, object]], blank_lines: bool = False) -> None:
    lines = [json.dumps(r) for r in records]
    path.write_text(("\n\n" if blank_lines else "\n").join(lines) + "\n")


def test_json_lines_ranges_skip_blank_lines(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "d.jsonl", [{"i": i} for i in range(10)], blank_lines=True)
    dataset = open_dataset(tmp_path / "d.jsonl")
    assert dataset.count() == 10
    assert [(n, r["i"]) for n, r in dataset.records(3, 6)] == [(3, 3), (4, 4), (5, 5)]


def test_a_directory_is_its_data_files_in_name_order(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "b.jsonl", [{"i": i} for i in range(3, 5)])
    _write_jsonl(tmp_path / "a.jsonl", [{"i": i} for i in range(3)])
    (tmp_path / "c.csv").write_text("i,name\n5,five\n6,six\n")
    (tmp_path / "assay.json").write_text('{"version": "v1"}')
    dataset = open_dataset(tmp_path)
    assert dataset.count() == 7
    assert [r["i"] for _, r in dataset.records(2, 7)] == [2, 3, 4, "5", "6"]  # CSV values stay strings


def test_parquet_ranges_across_batches(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(
        pa.table({"i": list(range(10_000)), "s": [str(i) for i in range(10_000)]}), tmp_path / "d.parquet"
    )
    dataset = open_dataset(tmp_path / "d.parquet")
    assert dataset.count() == 10_000
    records = list(dataset.records(4090, 4100))
    assert [n for n, _ in records] == list(range(4090, 4100))
    assert records[0][1] == {"i": 4090, "s": "4090"}


def test_bad_json_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"i": 0}\n{"i": 1\n')
    with pytest.raises(DatasetError, match=r"d\.jsonl line 2: not valid JSON"):
        list(open_dataset(tmp_path / "d.jsonl").records(0, 2))


def test_a_record_must_be_an_object(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text("[1, 2]\n")
    with pytest.raises(DatasetError, match="must be a JSON object"):
        list(open_dataset(tmp_path / "d.jsonl").records(0, 1))


@pytest.mark.parametrize("name", ["missing.jsonl", "data.txt", "empty-dir"])
def test_unreadable_locations_say_why(tmp_path: Path, name: str) -> None:
    (tmp_path / "data.txt").write_text("x")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(DatasetError, match=r"does not exist|unknown format|holds no data file"):
        open_dataset(tmp_path / name)


def test_writer_resumes_after_the_last_complete_line(tmp_path: Path) -> None:
    with PredictionWriter(tmp_path, 1, 2, start=50, stop=100) as writer:
        writer.write_batch(50, [0, 1, 2])
    path = tmp_path / shard_file_name(1, 2)
    with path.open("a") as file:
        file.write('{"index": 53, "predic')  # what a kill in the middle of a write leaves
    assert written_prefix(path, 50) == (3, len(path.read_bytes()) - len('{"index": 53, "predic'))
    with PredictionWriter(tmp_path, 1, 2, start=50, stop=100) as resumed:
        assert (resumed.resumed_from, resumed.next_index) == (3, 53)
        resumed.write_batch(53, [3])
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [50, 51, 52, 53]


def test_writer_refuses_a_batch_out_of_sequence(tmp_path: Path) -> None:
    with PredictionWriter(tmp_path, 0, 1, start=0, stop=10) as writer, pytest.raises(PredictionsError):
        writer.write_batch(5, [1])


def test_numpy_predictions_are_stored_as_json(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    with PredictionWriter(tmp_path, 0, 1, start=0, stop=2) as writer:
        writer.write_batch(0, [np.int64(3), np.array([0.5, 0.25])])
    assert list(read_predictions([tmp_path / shard_file_name(0, 1)], 2)) == [3, [0.5, 0.25]]


def test_shard_files_finds_the_layout_and_names_missing_shards(tmp_path: Path) -> None:
    for index in (0, 2):
        (tmp_path / shard_file_name(index, 3)).write_text("")
    with pytest.raises(PredictionsError, match=r"shard\(s\) 1 of 3 are missing"):
        shard_files(tmp_path)
    (tmp_path / shard_file_name(1, 3)).write_text("")
    (tmp_path / shard_file_name(0, 1)).write_text("")
    with pytest.raises(PredictionsError, match="predictions of 1, 3 shards"):
        shard_files(tmp_path)
    assert [p.name for p in shard_files(tmp_path, preferred_count=3)] == [
        shard_file_name(i, 3) for i in range(3)
    ]
    with pytest.raises(PredictionsError, match="no predictions"):
        shard_files(tmp_path / "nothing")


def test_read_predictions_names_an_unfinished_shard(tmp_path: Path) -> None:
    with PredictionWriter(tmp_path, 0, 2, start=0, stop=5) as writer:
        writer.write_batch(0, [0, 1, 2, 3, 4])
    with PredictionWriter(tmp_path, 1, 2, start=5, stop=10) as writer:
        writer.write_batch(5, [5, 6])
    files = shard_files(tmp_path)
    with pytest.raises(PredictionsError, match="shard 1 has 2 of its 5 predictions"):
        list(read_predictions(files, 10))


# Every text format, with what real files carry: (file name, content, the records expected).
ONE_TWO = [{"i": "1", "s": "a"}, {"i": "2", "s": "b"}]
TEXT_VARIANTS = {
    "csv-trailing-blank-line": ("d.csv", "i,s\n1,a\n2,b\n\n", ONE_TWO),
    "csv-blank-lines-between": ("d.csv", "i,s\n\n1,a\n\n\n2,b\n", ONE_TWO),
    "csv-bom": ("d.csv", "\ufeffi,s\n1,a\n", [{"i": "1", "s": "a"}]),
    "csv-crlf": ("d.csv", "i,s\r\n1,a\r\n2,b\r\n\r\n", ONE_TWO),
    "csv-quoted-newlines": (
        "d.csv",
        'i,s\r\n1,"two\nlines"\r\n2,"crlf\r\ninside"\r\n',
        [{"i": "1", "s": "two\nlines"}, {"i": "2", "s": "crlf\r\ninside"}],
    ),
    "csv-empty-file": ("d.csv", "", []),
    "csv-header-only": ("d.csv", "i,s\n", []),
    "jsonl-trailing-blank-lines": ("d.jsonl", '{"i": 1}\n{"i": 2}\n\n \n', [{"i": 1}, {"i": 2}]),
    "jsonl-bom": ("d.jsonl", '\ufeff{"i": 1}\n{"i": 2}\n', [{"i": 1}, {"i": 2}]),
    "jsonl-bom-then-blank-line": ("d.jsonl", '\ufeff\n{"i": 1}\n', [{"i": 1}]),
    "jsonl-crlf": ("d.jsonl", '{"i": 1}\r\n\r\n{"i": 2}\r\n', [{"i": 1}, {"i": 2}]),
    "jsonl-escaped-newlines": ("d.ndjson", '{"s": "a\\nb\\r\\nc"}\n', [{"s": "a\nb\r\nc"}]),
    "jsonl-empty-file": ("d.jsonl", "", []),
}


@pytest.mark.parametrize("variant", TEXT_VARIANTS)
@pytest.mark.parametrize("shards", [1, 2, 3])
def test_counting_and_reading_agree_for_every_text_format(tmp_path: Path, variant: str, shards: int) -> None:
    name, content, expected = TEXT_VARIANTS[variant]
    (tmp_path / name).write_bytes(content.encode("utf-8"))
    dataset = open_dataset(tmp_path / name)
    assert dataset.count() == len(expected)
    read = [
        pair
        for index in range(shards)
        for pair in dataset.records(*shard_range(dataset.count(), index, shards))
    ]
    assert read == list(enumerate(expected))


def test_parquet_edge_cases(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    values = ["", "two\nlines", "crlf\r\nin", "\ufeffbom"]
    pq.write_table(pa.table({"s": values}), tmp_path / "d.parquet")
    dataset = open_dataset(tmp_path / "d.parquet")
    assert dataset.count() == 4
    assert [r["s"] for _, r in dataset.records(0, 2)] + [r["s"] for _, r in dataset.records(2, 4)] == values
    pq.write_table(pa.table({"s": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    assert open_dataset(tmp_path / "empty.parquet").count() == 0
    (tmp_path / "zero-bytes.parquet").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"cannot read .*zero-bytes\.parquet"):
        open_dataset(tmp_path / "zero-bytes.parquet").count()
