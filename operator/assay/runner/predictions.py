"""The predictions store: one JSON Lines file per shard under ``<output>/predictions/``.

Each line is ``{"index": <dataset index>, "prediction": <value>}``, with ``"label": <value>`` added when the
record has a ``label`` field (the format is documented in :mod:`assay.contract`). The predict step appends
one batch at a time and flushes it, so a task killed at any moment leaves every finished batch on disk (a
half-written last line is cut off on resume). A rerun of the same shard continues after the last written
record instead of starting over. File names carry the shard layout (``shard-00001-of-00004.jsonl``) so the
evaluate step finds every shard without being told how many there were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from assay.contract import LABEL_FIELD, PREDICTIONS_DIR, SHARD_FILE_PATTERN, shard_file_name
from assay.runner.datasets import Record, shard_range

__all__ = ["PREDICTIONS_DIR", "shard_file_name"]  # re-exported: the runner's modules import them from here


class PredictionsError(Exception):
    """Predictions that are missing, incomplete or do not match the dataset."""


def _to_json(value: Any) -> Any:
    """numpy arrays and scalars (and anything else with ``tolist``/``item``) as plain JSON values."""
    for method in ("tolist", "item"):
        if hasattr(value, method):
            return getattr(value, method)()
    raise TypeError(f"a prediction of type {type(value).__name__} cannot be stored as JSON")


# One encoder for all lines: json.dumps with options builds a new encoder per call, which shows in profiles.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_to_json, ensure_ascii=False)


def _encode(value: Any) -> str:
    # Class labels are the common case; str(int) is several times faster than the encoder.
    return str(value) if type(value) is int else _ENCODER.encode(value)


def encode_line(index: int, prediction: Any, record: Record | None = None) -> str:
    if record is not None and LABEL_FIELD in record:
        label = _encode(record[LABEL_FIELD])
        return f'{{"index":{index},"prediction":{_encode(prediction)},"label":{label}}}\n'
    return f'{{"index":{index},"prediction":{_encode(prediction)}}}\n'


def read_stored(path: Path, count: int) -> Iterator[Any]:
    """The first ``count`` predictions of a shard file (already checked by :func:`written_prefix`)."""
    with path.open("rb") as file:
        for line, _ in zip(file, range(count), strict=False):
            yield json.loads(line)["prediction"]


def written_prefix(path: Path, start: int) -> tuple[int, int]:
    """How many consecutive records from ``start`` a shard file holds, and the byte length of those lines.

    Reading stops at the first line that is incomplete, unreadable or out of sequence; what follows is
    treated as not written.
    """
    count = 0
    length = 0
    with path.open("rb") as file:
        for line in file:
            if not line.endswith(b"\n"):
                break
            try:
                index = json.loads(line)["index"]
            except (ValueError, KeyError, TypeError):
                break
            if index != start + count:
                break
            count += 1
            length += len(line)
    return count, length


class PredictionWriter:
    """Appends a shard's predictions batch by batch; ``next_index`` is where the shard (re)starts."""

    def __init__(self, directory: Path, shard_index: int, shard_count: int, start: int, stop: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / shard_file_name(shard_index, shard_count)
        self.start, self.stop = start, stop
        written = 0
        if self.path.exists():
            written, length = written_prefix(self.path, start)
            written = min(written, stop - start)
            os.truncate(self.path, length)
        self.resumed_from = written
        self.next_index = start + written
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write_batch(
        self, first_index: int, predictions: Sequence[Any], records: Sequence[Record] | None = None
    ) -> None:
        """Append one batch; with ``records``, each record's label is stored beside its prediction."""
        if first_index != self.next_index:
            raise PredictionsError(f"batch starts at {first_index}, expected {self.next_index}")
        paired = records if records is not None else [None] * len(predictions)
        pairs = enumerate(zip(predictions, paired, strict=True))
        lines = (encode_line(first_index + k, p, r) for k, (p, r) in pairs)
        self._file.write("".join(lines))
        # flush (not fsync): the lines survive the process being killed, which is what a retry needs.
        self._file.flush()
        self.next_index += len(predictions)

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shard_files(directory: Path, preferred_count: int | None = None) -> list[Path]:
    """The complete set of shard files of one layout, in shard order.

    When files of several layouts are there (a rerun with another task count), the layout with
    ``preferred_count`` shards wins; without it, that is an error.
    """
    layouts: dict[int, dict[int, Path]] = {}
    if directory.is_dir():
        for path in directory.iterdir():
            match = SHARD_FILE_PATTERN.match(path.name)
            if match:
                layouts.setdefault(int(match.group(2)), {})[int(match.group(1))] = path
    if not layouts:
        raise PredictionsError(f"no predictions in {directory}: did the predict tasks write to this output?")
    if len(layouts) > 1:
        if preferred_count not in layouts:
            found = ", ".join(str(c) for c in sorted(layouts))
            raise PredictionsError(f"{directory} holds predictions of {found} shards; remove the stale ones")
        count = preferred_count
    else:
        (count,) = layouts
    shards = layouts[count]
    missing = [str(i) for i in range(count) if i not in shards]
    if missing:
        raise PredictionsError(
            f"{directory}: predictions of shard(s) {', '.join(missing)} of {count} are missing"
        )
    return [shards[i] for i in range(count)]


def read_predictions(files: Sequence[Path], total: int) -> Iterator[Any]:
    """Every prediction in dataset order, checking that each shard holds exactly its range of records."""
    for shard, path in enumerate(files):
        start, stop = shard_range(total, shard, len(files))
        expected = start
        with path.open("rb") as file:
            for line_number, line in enumerate(file, 1):
                try:
                    item = json.loads(line)
                    index, prediction = item["index"], item["prediction"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise PredictionsError(f"{path} line {line_number} is not a prediction: {exc}") from exc
                if index != expected or index >= stop:
                    raise PredictionsError(
                        f"{path} line {line_number} has record {index}, expected {expected} "
                        f"(shard {shard} covers records {start}..{stop - 1}): "
                        "it belongs to another dataset or run"
                    )
                expected += 1
                yield prediction
        if expected != stop:
            raise PredictionsError(
                f"shard {shard} has {expected - start} of its {stop - start} predictions ({path}): "
                "its predict task did not finish"
            )
