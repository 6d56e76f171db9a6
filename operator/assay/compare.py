"""Side-by-side comparison of evaluations against a baseline (``assay compare``), as pure functions.

Input is one :class:`Subject` per evaluation: its name, whether it is still running, and a flat mapping of
facts (``sys/*`` fields and summary metrics). Output is a :class:`Comparison`: one :class:`Row` per fact, one
:class:`Cell` per evaluation, the baseline first; every other numeric cell carries its delta against the
baseline. Renderers turn a comparison into JSON, CSV or Markdown; the rich table lives in the CLI.

A fact that an evaluation lacks is an empty cell, never an error: evaluations of different handlers report
different metrics.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeGuard

Value = str | int | float | bool | None

SYS_PREFIX = "sys/"


class CompareError(ValueError):
    """The comparison asked for cannot be built (unknown baseline, no such metric anywhere)."""


class Trend(StrEnum):
    """How a cell relates to the baseline's cell in the same row."""

    BASELINE = "baseline"
    UP = "up"
    DOWN = "down"
    SAME = "same"
    CHANGED = "changed"  # not numeric, and different
    MISSING = "missing"  # this evaluation, or the baseline, lacks the fact


TREND_MARKS: dict[Trend, str] = {
    Trend.BASELINE: "",
    Trend.UP: "▲",
    Trend.DOWN: "▼",
    Trend.SAME: "=",
    Trend.CHANGED: "≠",
    Trend.MISSING: "",
}


@dataclass(frozen=True)
class Subject:
    """One evaluation as the comparison sees it."""

    name: str
    facts: Mapping[str, Value]
    running: bool = False
    phase: str = ""


@dataclass(frozen=True)
class Cell:
    value: Value
    trend: Trend
    delta: float | None = None  # value - baseline in the inputs' decimals, for numbers only


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[Cell, ...]

    @property
    def differs(self) -> bool:
        """True when the evaluations do not all have the same value (a missing value counts as different)."""
        return len({_normalised(c.value) for c in self.cells}) > 1


@dataclass(frozen=True)
class Comparison:
    subjects: tuple[Subject, ...]  # baseline first
    rows: tuple[Row, ...] = field(default_factory=tuple)

    @property
    def baseline(self) -> Subject:
        return self.subjects[0]


def _is_number(value: Value) -> TypeGuard[int | float]:
    # bool is an int subclass, but "True - False" is no useful delta.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


is_number = _is_number  # public: the console's charts take the same numbers as the deltas


def _normalised(value: Value) -> Value:
    # 1 and 1.0 are the same metric value.
    return float(value) if _is_number(value) else value


def _cell(value: Value, baseline: Value, is_baseline: bool) -> Cell:
    if is_baseline:
        return Cell(value, Trend.BASELINE if value is not None else Trend.MISSING)
    if value is None or baseline is None:
        return Cell(value, Trend.MISSING)
    if _is_number(value) and _is_number(baseline):
        delta = _decimal_difference(value, baseline)
        if delta > 0:
            return Cell(value, Trend.UP, delta)
        if delta < 0:
            return Cell(value, Trend.DOWN, delta)
        return Cell(value, Trend.SAME, 0.0)
    return Cell(value, Trend.SAME if value == baseline else Trend.CHANGED)


def _decimal_difference(value: int | float, baseline: int | float) -> float:
    """``value - baseline`` as the decimals people wrote: 0.95 - 0.9 is 0.05, where binary floating point
    gives 0.04999999999999993. ``repr`` of a float is the shortest decimal that reads back as it."""
    return float(Decimal(repr(value)) - Decimal(repr(baseline)))


decimal_difference = _decimal_difference  # public: an EvaluationSet's table shows the same deltas


def row_keys(subjects: Sequence[Subject]) -> list[str]:
    """Every fact any subject has: metrics first, then ``sys/*`` fields, each in the order they are first
    met (the baseline's order, which is the order its evaluate step reported them)."""
    metric_keys: dict[str, None] = {}
    sys_keys: dict[str, None] = {}
    for subject in subjects:
        for key in subject.facts:
            (sys_keys if key.startswith(SYS_PREFIX) else metric_keys).setdefault(key, None)
    return [*metric_keys, *sys_keys]


def compare(
    subjects: Sequence[Subject],
    *,
    baseline: str | None = None,
    only_diff: bool = False,
    columns: Sequence[str] | None = None,
) -> Comparison:
    """Build the comparison table.

    ``baseline`` names the subject to compare against (default: the first); ``columns`` picks and orders the
    rows (metric names or ``sys/*`` fields; a name none of the subjects has is an error, one that only some
    lack gives empty cells); ``only_diff`` drops rows whose values are equal across all subjects.
    """
    if not subjects:
        raise CompareError("nothing to compare: name at least one evaluation")
    ordered = list(subjects)
    if baseline is not None:
        names = [s.name for s in ordered]
        if baseline not in names:
            raise CompareError(
                f"baseline {baseline!r} is not among the compared evaluations: {', '.join(names)}"
            )
        ordered.insert(0, ordered.pop(names.index(baseline)))

    known = row_keys(ordered)
    if columns:
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise CompareError(
                f"no compared evaluation has {', '.join(repr(c) for c in unknown)}; known: {', '.join(known)}"
            )
        keys = list(dict.fromkeys(columns))
    else:
        keys = known

    base = ordered[0]
    rows = []
    for key in keys:
        base_value = base.facts.get(key)
        cells = tuple(_cell(s.facts.get(key), base_value, i == 0) for i, s in enumerate(ordered))
        row = Row(key, cells)
        if only_diff and not row.differs:
            continue
        rows.append(row)
    return Comparison(tuple(ordered), tuple(rows))


# --- text of one cell -----------------------------------------------------------------------------------


def format_value(value: Value) -> str:
    """A value as people read it: integers whole, floats to six significant digits, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def format_delta(delta: float | None) -> str:
    if delta is None:
        return ""
    if float(delta).is_integer() and abs(delta) < 1e15:
        return f"{int(delta):+d}"
    return f"{delta:+.4g}"


def cell_text(cell: Cell) -> str:
    """``0.9912 ▲+0.0012``: the value, the mark, the delta (numbers) — what table and Markdown show."""
    text = format_value(cell.value)
    mark = mark_text(cell)
    return f"{text} {mark}" if mark else text


def mark_text(cell: Cell) -> str:
    """``▲+0.0012``, ``▼-3`` or ``=`` for numbers; nothing for text (ids and times always differ, and a mark
    on each would drown the metrics)."""
    if cell.delta is None:
        return ""
    mark = TREND_MARKS[cell.trend]
    return mark + format_delta(cell.delta) if cell.trend in (Trend.UP, Trend.DOWN) else mark


def column_title(subject: Subject, is_baseline: bool) -> str:
    title = subject.name
    if is_baseline:
        title += " (baseline)"
    if subject.running:
        title += f" [{subject.phase or 'running'}]"
    return title


# --- whole-comparison renderers -------------------------------------------------------------------------


def to_data(comparison: Comparison) -> dict[str, Any]:
    """A JSON-ready structure: evaluations (baseline first, running flag) and rows with value/trend/delta."""
    return {
        "baseline": comparison.baseline.name,
        "evaluations": [
            {"name": s.name, "phase": s.phase, "running": s.running} for s in comparison.subjects
        ],
        "rows": [
            {
                "key": row.key,
                "values": {
                    s.name: {"value": c.value, "trend": c.trend.value, "delta": c.delta}
                    for s, c in zip(comparison.subjects, row.cells, strict=True)
                },
            }
            for row in comparison.rows
        ],
    }


def to_json(comparison: Comparison) -> str:
    return json.dumps(to_data(comparison), indent=2)


def to_csv(comparison: Comparison) -> str:
    """One row per fact; per evaluation a value column and (not for the baseline) a delta column, so the file
    stays numeric for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["key"]
    for i, subject in enumerate(comparison.subjects):
        header.append(subject.name)
        if i > 0:
            header.append(f"{subject.name} delta")
    writer.writerow(header)
    for row in comparison.rows:
        line = [row.key]
        for i, cell in enumerate(row.cells):
            line.append(format_value(cell.value))
            if i > 0:
                line.append(format_delta(cell.delta) if cell.delta is not None else "")
        writer.writerow(line)
    return out.getvalue()


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(comparison: Comparison) -> str:
    titles = [column_title(s, i == 0) for i, s in enumerate(comparison.subjects)]
    lines = [
        "| " + " | ".join(["key", *map(_markdown_escape, titles)]) + " |",
        "|" + "---|" * (len(titles) + 1),
    ]
    for row in comparison.rows:
        cells = [_markdown_escape(cell_text(c)) for c in row.cells]
        lines.append("| " + " | ".join([_markdown_escape(row.key), *cells]) + " |")
    return "\n".join(lines) + "\n"
