"""Per-record results: the runner's output read back page by page, the report's extra metrics, the reader
pod for pvc:// outputs, and ``assay results``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_render_jobs import POOL, evaluation
from typer.testing import CliRunner

from assay.api import ResourcePool
from assay.cli.main import app
from assay.errors import Invalid
from assay.results import (
    ResultsError,
    RowFilter,
    choose_shards,
    class_tables,
    confusion_matrices,
    page_of,
    read_results,
)
from assay.results_pod import byte_lines, reader_pod, reader_pod_name, split_stream
from assay.runner.predictions import PredictionWriter
from assay.runner.steps import EvaluateResult, write_report

# Records 0..9, label = index % 3, prediction = label except for records 2, 5 and 7.
WRONG = {2, 5, 7}


def lines(count: int = 10, labelled: bool = True) -> list[str]:
    out = []
    for i in range(count):
        item: dict[str, Any] = {"index": i, "prediction": (i % 3 + 1) % 3 if i in WRONG else i % 3}
        if labelled:
            item["label"] = i % 3
        out.append(json.dumps(item) + "\n")
    return out


def test_a_page_is_offset_and_limit_with_whether_more_follow() -> None:
    rows, more = page_of(lines(), offset=3, limit=4)
    assert [r.index for r in rows] == [3, 4, 5, 6] and more
    assert [r.correct for r in rows] == [True, True, False, True]
    rows, more = page_of(lines(), offset=8, limit=4)
    assert [r.index for r in rows] == [8, 9] and not more


def test_only_the_wrong_ones_are_paged_among_themselves() -> None:
    rows, more = page_of(lines(), keep=RowFilter(only_wrong=True), limit=2)
    assert [r.index for r in rows] == [2, 5] and more
    rows, more = page_of(lines(), keep=RowFilter(only_wrong=True), offset=2, limit=2)
    assert [r.index for r in rows] == [7] and not more


def test_records_without_a_label_are_never_wrong() -> None:
    rows, _ = page_of(lines(labelled=False))
    assert all(r.correct is None and not r.has_label for r in rows)
    assert page_of(lines(labelled=False), keep=RowFilter(only_wrong=True)) == ([], False)


def test_a_page_reads_one_line_past_its_end_at_most() -> None:
    read = 0

    def endless() -> Iterator[str]:
        nonlocal read
        while True:
            yield json.dumps({"index": read, "prediction": 1, "label": 1}) + "\n"
            read += 1

    rows, more = page_of(endless(), offset=100, limit=10)
    assert len(rows) == 10 and more and read == 110


def test_a_line_that_is_not_a_prediction_is_an_error_naming_the_place() -> None:
    with pytest.raises(ResultsError, match="somewhere"):
        page_of(["{}\n"], where="somewhere")
    with pytest.raises(Invalid, match="limit"):
        page_of([], limit=0)


def test_the_shards_of_the_layout_the_report_names_are_read_in_order() -> None:
    names = ["shard-00001-of-00002.jsonl", "shard-00000-of-00002.jsonl", "shard-00000-of-00001.jsonl", "x"]
    assert choose_shards(names, 2) == ["shard-00000-of-00002.jsonl", "shard-00001-of-00002.jsonl"]
    assert choose_shards(names, 1) == ["shard-00000-of-00001.jsonl"]
    with pytest.raises(ResultsError, match="1, 2 shards"):
        choose_shards(names)
    with pytest.raises(ResultsError, match=r"shard\(s\) 1 of 2 are missing"):
        choose_shards(["shard-00000-of-00002.jsonl"])
    with pytest.raises(ResultsError, match="no prediction shards"):
        choose_shards([])


DIGITS_METRICS: dict[str, Any] = {
    "accuracy": 0.9,
    "macro avg": {"precision": 0.9, "recall": 0.8},
    "per class": {"0": {"precision": 1.0, "recall": 0.5}, "1": {"precision": 0.5, "recall": 1.0}},
    "confusion matrix": {"labels": [0, 1], "matrix": [[1, 1], [0, 2]]},
}


def test_the_reports_confusion_matrix_and_per_class_table_are_found() -> None:
    (matrix,) = confusion_matrices(DIGITS_METRICS)
    assert (matrix.name, matrix.classes, matrix.matrix, matrix.largest) == (
        "confusion matrix",
        ["0", "1"],
        [[1, 1], [0, 2]],
        2,
    )
    (table,) = class_tables(DIGITS_METRICS)
    assert table.name == "per class" and table.columns == ["precision", "recall"]
    assert table.rows == [("0", [1.0, 0.5]), ("1", [0.5, 1.0])]
    assert confusion_matrices({"m": [[1, 2]], "n": [[True]]}) == []  # not square, not numbers


def written_output(tmp_path: Path) -> Path:
    """An output as the runner's predict tasks and evaluate step write it: two shards, labels, a report."""
    records = [{"id": i, "label": i % 3} for i in range(10)]
    predictions = [json.loads(line)["prediction"] for line in lines()]
    for shard, (start, stop) in enumerate([(0, 5), (5, 10)]):
        with PredictionWriter(tmp_path / "predictions", shard, 2, start, stop) as writer:
            writer.write_batch(start, predictions[start:stop], records[start:stop])
    write_report(tmp_path, EvaluateResult({"accuracy": 0.7}, DIGITS_METRICS, 10, shards=2), {})
    return tmp_path


def test_the_runners_output_is_read_from_a_path_and_from_file_uris(tmp_path: Path) -> None:
    output = written_output(tmp_path)
    page = read_results(str(output), only_wrong=True)
    assert [(r.index, r.label, r.prediction) for r in page.rows] == [(2, 2, 0), (5, 2, 0), (7, 1, 2)]
    assert page.records == 10 and page.metrics == DIGITS_METRICS and not page.more
    assert read_results(output.as_uri(), offset=4, limit=2).rows == page_of(lines(), offset=4, limit=2)[0]


def test_an_output_without_results_says_so(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="does not exist"):
        read_results(str(tmp_path / "nothing"))
    with pytest.raises(Exception, match="has the evaluation finished"):
        read_results(str(tmp_path))
    with pytest.raises(Invalid, match="pvc://"):
        read_results("ftp://host/x")


def test_the_reader_pod_is_restricted_read_only_owned_and_not_a_task_pod() -> None:
    pool = ResourcePool.model_validate(POOL)
    pod = reader_pod(
        evaluation(),
        "results",
        "team-a/mnist",
        node_selector=pool.spec.node_selector,
        tolerations=[t.model_dump(by_alias=True, exclude_none=True) for t in pool.spec.tolerations],
        suffix="abc123",
    )
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "mnist-results-abc123" and meta["namespace"] == "team-a"
    assert "assay.dev/evaluation" not in meta["labels"]  # the operator would take it for a task pod
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Evaluation", "mnist", "uid-1")
    assert "controller" not in owner and "blockOwnerDeletion" not in owner
    assert spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["nodeSelector"] == {"gpu.example.com/type": "a100"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    (volume,) = spec["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "results", "readOnly": True}
    (container,) = spec["containers"]
    assert container["image"] == "registry.example.com/assay-runtime:2.4"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    (mount,) = container["volumeMounts"]
    assert mount["readOnly"] is True
    assert container["command"][-1] == f"{mount['mountPath']}/team-a/mnist"
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])


def test_the_reader_pod_name_is_valid_for_any_evaluation_name() -> None:
    name = reader_pod_name("a" * 62 + "-b")
    assert len(name) <= 63 and name.startswith("a") and "--" not in name
    assert reader_pod_name("x") != reader_pod_name("x")  # one pod per read


def test_the_reader_script_streams_what_the_client_reads(tmp_path: Path) -> None:
    """The script the pod runs, run here on a real output, read back as the client does."""
    import subprocess
    import sys

    output = written_output(tmp_path)
    (output / "predictions" / "shard-00000-of-00001.jsonl").write_text("stale\n")
    command = reader_pod(evaluation(), "results", "x")["spec"]["containers"][0]["command"]
    log = subprocess.run([sys.executable, "-c", command[2], str(output)], capture_output=True, check=True)
    chunks = [log.stdout[i : i + 7] for i in range(0, len(log.stdout), 7)]  # cut mid-line, as a stream is
    report, names, rest = split_stream(byte_lines(iter(chunks)))
    assert report["predictionShards"] == 2 and "shard-00000-of-00001.jsonl" in names
    assert page_of(rest, limit=100)[0] == page_of(lines(), limit=100)[0]


def test_a_reader_that_printed_no_report_is_an_error() -> None:
    with pytest.raises(ValueError, match="no report"):
        split_stream(iter([b"Traceback...\n"]))


def test_assay_results_reads_a_local_output(tmp_path: Path) -> None:
    output = written_output(tmp_path)
    runner = CliRunner()
    table = runner.invoke(app, ["results", "--location", str(output), "--only-wrong"])
    assert table.exit_code == 0, table.output
    assert "NO" in table.output and "wrong records 1..3" in table.output
    csv_out = runner.invoke(app, ["results", "--location", str(output), "-o", "csv", "--limit", "3"])
    assert csv_out.output.splitlines() == [
        "record,label,prediction,correct",
        "0,0,0,true",
        "1,1,1,true",
        "2,2,0,false",
    ]
    body = json.loads(runner.invoke(app, ["results", "--location", str(output), "-o", "json"]).output)
    assert body["more"] is False and len(body["rows"]) == 10 and body["metrics"] == DIGITS_METRICS
    both = runner.invoke(app, ["results", "x", "--location", str(output)])
    assert both.exit_code != 0 and "not both" in both.output


def test_rows_are_filtered_by_label_and_prediction_as_the_table_shows_them() -> None:
    rows, _ = page_of(lines(), keep=RowFilter(label="2"))
    assert [r.index for r in rows] == [2, 5, 8]
    rows, _ = page_of(lines(), keep=RowFilter(label="2", prediction="0"))
    assert [r.index for r in rows] == [2, 5]  # the cell of the confusion matrix: label 2, predicted 0
    assert page_of(lines(labelled=False), keep=RowFilter(label="0")) == ([], False)
