"""The EvaluationSets pages' model: the sets as ``assay sets`` lists them, one set's table as ``assay set``
shows it, and the list view of its children (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from assay import compare as comparing
from assay import facts
from assay.api import EvaluationSet
from assay.console.compare_view import CompareView
from assay.console.panes import Panes


@dataclass(frozen=True)
class SetRow:
    namespace: str
    name: str
    phase: str
    progress: str
    best: str
    cost: str
    age: str


def set_rows(evaluation_sets: Sequence[EvaluationSet], now: datetime) -> list[SetRow]:
    """One row per set: the columns of ``assay sets``."""
    return [
        SetRow(
            namespace=s.namespace,
            name=s.name,
            phase=s.status.phase or "Pending",
            progress=s.status.progress or "",
            best=s.status.best.shown or "" if s.status.best is not None else "",
            cost=s.status.cost.shown or "" if s.status.cost is not None else "",
            age=facts.age(s.metadata.creation_timestamp, now),
        )
        for s in evaluation_sets
    ]


@dataclass(frozen=True)
class GridCell:
    evaluation: str
    text: str  # the value, or the child's phase while it has none
    mark: str  # ▲+0.01, ▼-0.07, or empty
    trend: str  # a comparing.Trend value, for the colour; "missing" without a value


def _cell(
    evaluation: str, value: float | None, delta: float | None, baseline: bool, phase: str | None
) -> GridCell:
    if value is None:
        return GridCell(evaluation, phase or "not created", "", comparing.Trend.MISSING.value)
    if baseline:
        return GridCell(evaluation, comparing.format_value(value), "", comparing.Trend.BASELINE.value)
    trend = comparing.Trend.SAME
    if delta:
        trend = comparing.Trend.UP if delta > 0 else comparing.Trend.DOWN
    mark = comparing.TREND_MARKS[trend] + (comparing.format_delta(delta) if delta else "")
    return GridCell(evaluation, comparing.format_value(value), mark, trend.value)


def grid(evaluation_set: EvaluationSet) -> list[tuple[str, list[GridCell | None]]]:
    """The set's table: (dataset, one cell per column, None where the matrix has no such child)."""
    table = evaluation_set.status.table
    if table is None:
        return []
    rows = []
    for row in table.rows:
        by_column = {c.column: c for c in row.cells}
        cells = [
            _cell(c.evaluation, c.value, c.delta, c.baseline, c.phase)
            if (c := by_column.get(column))
            else None
            for column in table.columns
        ]
        rows.append((row.dataset, cells))
    return rows


def children_compared(evaluation_set: EvaluationSet) -> Panes:
    """The list's compare pane over the set's created children, the set's baseline first."""
    table = evaluation_set.status.table
    cells = [c for row in (table.rows if table else []) for c in row.cells if c.phase]
    ref = f"{evaluation_set.namespace}/{{}}".format
    baseline = next((ref(c.evaluation) for c in cells if c.baseline), "")
    refs = tuple(dict.fromkeys(ref(c.evaluation) for c in cells))
    return Panes(compared=CompareView(refs=refs, baseline=baseline) if refs else None)
