"""Per-record results: the prediction shards and the report of an evaluation's output, read back page by page.

The runner writes them (the format is in :mod:`assay.contract`); this module reads them wherever they are: a
local path or ``file://`` directly, ``s3://`` with boto3 (not a dependency of Assay), and ``pvc://`` through
:mod:`assay.results_pod`. Rows are streamed and a page stops reading as soon as it is full, so an output of
millions of records is never loaded whole: :func:`page_of` takes any iterator of JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from assay.contract import LABEL_FIELD, PREDICTIONS_DIR, REPORT_FILE, SHARD_FILE_PATTERN
from assay.errors import Invalid, NotFound

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 10_000


@dataclass(frozen=True)
class ResultRow:
    """One record: its index, its label when it has one, the prediction, and whether the two agree."""

    index: int
    prediction: Any
    label: Any = None
    has_label: bool = False

    @property
    def correct(self) -> bool | None:
        """None when the record has no label: nothing to agree with."""
        return self.prediction == self.label if self.has_label else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "label": self.label,
            "prediction": self.prediction,
            "correct": self.correct,
        }


@dataclass(frozen=True)
class ResultsPage:
    """Rows ``offset``.. of the (filtered) results, the report's metrics, and whether more rows follow."""

    rows: list[ResultRow]
    offset: int
    limit: int
    more: bool
    only_wrong: bool = False
    records: int | None = None  # every record of the evaluation, from the report
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    location: str = ""

    @property
    def labelled(self) -> bool:
        return any(row.has_label for row in self.rows)


def value_text(value: Any) -> str:
    """A label or prediction as the tables show it and the filters match it: strings as they are, other
    values as JSON (``3``, ``[0.1, 0.9]``)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class RowFilter:
    """Which rows a page keeps: only the wrong ones, and/or one label and/or one prediction (as text)."""

    only_wrong: bool = False
    label: str | None = None
    prediction: str | None = None

    def keeps(self, row: ResultRow) -> bool:
        if self.only_wrong and row.correct is not False:
            return False
        if self.label is not None and not (row.has_label and value_text(row.label) == self.label):
            return False
        return self.prediction is None or value_text(row.prediction) == self.prediction


ALL_ROWS = RowFilter()


class ResultsError(Invalid):
    """The output holds no readable results; the message says what is there and what is missing."""


def parse_row(line: str | bytes, where: str) -> ResultRow:
    try:
        item = json.loads(line)
        index = item["index"]
        prediction = item["prediction"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"{where}: a line is not a prediction ({exc}): is this an Assay output?") from exc
    return ResultRow(index, prediction, item.get(LABEL_FIELD), LABEL_FIELD in item)


def page_of(
    lines: Iterable[str | bytes],
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
    keep: RowFilter = ALL_ROWS,
    where: str = "",
) -> tuple[list[ResultRow], bool]:
    """Rows ``offset`` to ``offset + limit`` of those ``keep`` keeps, and whether more follow. Reads one
    line past the page at most: the caller may close the source right after."""
    if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
        raise Invalid(f"offset must be >= 0 and limit 1..{MAX_PAGE_SIZE}, got offset={offset}, limit={limit}")
    rows: list[ResultRow] = []
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        row = parse_row(line, where)
        if not keep.keeps(row):
            continue
        if skipped < offset:
            skipped += 1
            continue
        if len(rows) == limit:
            return rows, True
        rows.append(row)
    return rows, False


def choose_shards(names: Iterable[str], preferred_count: int | None = None) -> list[str]:
    """The shard file names of one complete layout, in shard order (as the runner's evaluate step chose)."""
    layouts: dict[int, dict[int, str]] = {}
    for name in names:
        match = SHARD_FILE_PATTERN.match(name)
        if match:
            layouts.setdefault(int(match.group(2)), {})[int(match.group(1))] = name
    if not layouts:
        raise ResultsError(f"no prediction shards in {PREDICTIONS_DIR}/: did the tasks write to this output?")
    if preferred_count in layouts:
        count = preferred_count
    elif len(layouts) == 1:
        (count,) = layouts
    else:
        found = ", ".join(str(c) for c in sorted(layouts))
        raise ResultsError(
            f"{PREDICTIONS_DIR}/ holds predictions of {found} shards and the report names none"
        )
    shards = layouts[count]
    missing = [str(i) for i in range(count) if i not in shards]
    if missing:
        raise ResultsError(f"predictions of shard(s) {', '.join(missing)} of {count} are missing")
    return [shards[i] for i in range(count)]


# --- extra metrics: what the console draws ------------------------------------------------------------


@dataclass(frozen=True)
class ConfusionMatrix:
    """``matrix[i][j]``: records of class ``classes[i]`` predicted as ``classes[j]``."""

    name: str
    classes: list[str]
    matrix: list[list[float]]

    @property
    def largest(self) -> float:
        return max((max(row, default=0) for row in self.matrix), default=0) or 1


@dataclass(frozen=True)
class ClassTable:
    """Per-class metrics: one row per class, one column per metric (precision, recall, ...)."""

    name: str
    columns: list[str]
    rows: list[tuple[str, list[Any]]]


def _square(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(row, list) and len(row) == len(value) for row in value)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for row in value for v in row)
    )


def confusion_matrices(metrics: Mapping[str, Any], prefix: str = "") -> list[ConfusionMatrix]:
    """Square matrices of numbers in the report's metrics, as a list of rows or as
    ``{"labels": [...], "matrix": [[...]]}``; their class names come from ``labels`` when given."""
    found: list[ConfusionMatrix] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            inner = value.get("matrix")
            if isinstance(inner, list) and _square(inner):
                labels = value.get("labels")
                classes = (
                    [str(c) for c in labels]
                    if isinstance(labels, list) and len(labels) == len(inner)
                    else [str(i) for i in range(len(inner))]
                )
                found.append(ConfusionMatrix(name, classes, inner))
            else:
                found.extend(confusion_matrices(value, f"{name}/"))
        elif _square(value):
            found.append(ConfusionMatrix(name, [str(i) for i in range(len(value))], value))
    return found


def class_tables(metrics: Mapping[str, Any], prefix: str = "") -> list[ClassTable]:
    """Mappings of at least two classes to mappings of scalar metrics (sklearn's ``classification_report``
    shape: ``{"0": {"precision": .., "recall": ..}, "1": {...}}``)."""
    found: list[ClassTable] = []
    for key, value in metrics.items():
        if not isinstance(value, Mapping):
            continue
        name = f"{prefix}{key}"
        inner = list(value.values())
        if len(inner) >= 2 and all(
            isinstance(v, Mapping) and v and all(not isinstance(x, Mapping | list) for x in v.values())
            for v in inner
        ):
            columns = list(dict.fromkeys(k for v in inner for k in v))
            rows = [(str(cls), [v.get(c) for c in columns]) for cls, v in value.items()]
            found.append(ClassTable(name, columns, rows))
        else:
            found.extend(class_tables(value, f"{name}/"))
    return found


# --- where the output is ------------------------------------------------------------------------------


class Output(Protocol):
    """An output location that can list its prediction shards and stream a file line by line."""

    def names(self, directory: str) -> list[str]: ...
    def lines(self, path: str) -> Iterator[bytes]: ...


class LocalOutput:
    """A local directory (``assay run --local``'s output, or a claim mounted on this machine)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise NotFound(f"output directory {root} does not exist")
        self.root = root

    def names(self, directory: str) -> list[str]:
        path = self.root / directory
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    def lines(self, path: str) -> Iterator[bytes]:
        try:
            with (self.root / path).open("rb") as file:
                yield from file
        except FileNotFoundError as exc:
            raise NotFound(f"{self.root / path} does not exist: has the evaluation finished?") from exc


class S3Output:
    """``s3://bucket/prefix``; boto3's usual environment gives the credentials and the endpoint."""

    def __init__(self, bucket: str, prefix: str) -> None:
        try:
            import boto3  # optional: only s3:// outputs need it
        except ImportError as exc:
            raise Invalid("reading s3:// results needs boto3: pip install boto3") from exc
        self.s3 = boto3.client("s3")
        self.bucket, self.prefix = bucket, prefix.strip("/")

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def names(self, directory: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(directory).rstrip("/") + "/"
        )
        return sorted(item["Key"].rsplit("/", 1)[-1] for page in pages for item in page.get("Contents", []))

    def lines(self, path: str) -> Iterator[bytes]:
        body = self.s3.get_object(Bucket=self.bucket, Key=self._key(path))["Body"]
        try:
            yield from body.iter_lines(keepends=True)
        finally:
            body.close()


def output_for(location: str) -> Output:
    """An :class:`Output` for a local path, ``file://`` or ``s3://`` location (``pvc://`` needs a cluster:
    :class:`assay.results_pod.PodOutput`)."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return LocalOutput(Path(unquote(parsed.path) if parsed.scheme else location).expanduser())
    if parsed.scheme == "s3":
        return S3Output(parsed.netloc, parsed.path)
    raise Invalid(f"cannot read results from {location}: use a path, file://, s3:// or pvc:// location")


def read_report(output: Output) -> dict[str, Any]:
    text = b"".join(output.lines(REPORT_FILE))
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise ResultsError(f"{REPORT_FILE} is not JSON: {exc}") from exc
    if not isinstance(report, dict):
        raise ResultsError(f"{REPORT_FILE} is not a JSON object")
    return report


def page_from(
    report: Mapping[str, Any],
    names: Iterable[str],
    lines_of: Callable[[Sequence[str]], Iterator[bytes]],
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
    keep: RowFilter = ALL_ROWS,
    location: str = "",
) -> ResultsPage:
    """One page from a report, the names in ``predictions/`` and the lines of the chosen shards."""
    preferred = report.get("predictionShards")
    shards = choose_shards(names, preferred if isinstance(preferred, int) else None)
    lines = lines_of(shards)
    try:
        rows, more = page_of(lines, offset=offset, limit=limit, keep=keep, where=location)
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()  # closes the open shard (or stream) when the page filled early
    records, summary, metrics = report.get("records"), report.get("summary"), report.get("metrics")
    return ResultsPage(
        rows=rows,
        offset=offset,
        limit=limit,
        more=more,
        only_wrong=keep.only_wrong,
        records=records if isinstance(records, int) else None,
        summary=summary if isinstance(summary, dict) else {},
        metrics=metrics if isinstance(metrics, dict) else {},
        location=location,
    )


def read_page(
    output: Output,
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
    keep: RowFilter = ALL_ROWS,
    location: str = "",
) -> ResultsPage:
    """One page of an output's results and its report."""

    def lines_of(shards: Sequence[str]) -> Iterator[bytes]:
        for name in shards:
            yield from output.lines(f"{PREDICTIONS_DIR}/{name}")

    return page_from(
        read_report(output),
        output.names(PREDICTIONS_DIR),
        lines_of,
        offset=offset,
        limit=limit,
        keep=keep,
        location=location,
    )


def read_results(
    location: str,
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
    only_wrong: bool = False,
    keep: RowFilter | None = None,
) -> ResultsPage:
    """One page of the results in a local, ``file://`` or ``s3://`` output location."""
    wanted = keep or RowFilter(only_wrong=only_wrong)
    return read_page(output_for(location), offset=offset, limit=limit, keep=wanted, location=location)
