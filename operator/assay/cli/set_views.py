"""How the CLI shows EvaluationSets: the list (``assay sets``) and one set with its table (``assay set``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from assay import compare as comparing
from assay import facts
from assay.api import EvaluationSet
from assay.cli.views import TREND_STYLES, _table, phase_text


def sets_table(
    evaluation_sets: Sequence[EvaluationSet], *, all_namespaces: bool = False, now: datetime
) -> Table:
    """The sets as ``assay sets`` lists them; with ``-A`` a NAMESPACE column first, as ``kubectl get -A``."""
    table = _table(
        *(["NAMESPACE"] if all_namespaces else []), "NAME", "PHASE", "PROGRESS", "BEST", "COST", "AGE"
    )
    for evaluation_set in evaluation_sets:
        status = evaluation_set.status
        table.add_row(
            *([evaluation_set.namespace] if all_namespaces else []),
            evaluation_set.name,
            phase_text(status.phase or "Pending"),
            status.progress or "",
            status.best.shown if status.best is not None else "",
            status.cost.shown if status.cost is not None and status.cost.shown else "",
            facts.age(evaluation_set.metadata.creation_timestamp, now),
        )
    return table


def _cell_text(value: float | None, delta: float | None, baseline: bool, phase: str | None) -> Text:
    if value is None:
        return Text(phase or "not created", style="dim")
    text = Text(comparing.format_value(value))
    if baseline:
        text.append(" (baseline)", style="dim")
    elif delta is not None:
        trend = (
            comparing.Trend.UP if delta > 0 else comparing.Trend.DOWN if delta < 0 else comparing.Trend.SAME
        )
        mark = comparing.TREND_MARKS[trend] + (comparing.format_delta(delta) if delta else "")
        text.append(f" {mark}", style=TREND_STYLES[trend])
    return text


def set_details(evaluation_set: EvaluationSet) -> RenderableType:
    """Phase, counts, cost, best, then the table: one row per dataset, one column per model."""
    status = evaluation_set.status
    counts = status.counts
    lines = [
        Text.assemble("Phase: ", phase_text(status.phase or "Pending"), f"  {status.message or ''}"),
        Text(f"Progress: {status.progress or '0/0'}"),
    ]
    if counts is not None:
        lines.append(
            Text(
                f"Children: {counts.created} created, {counts.pending} pending, {counts.running} running, "
                f"{counts.suspended} suspended, {counts.succeeded} succeeded, {counts.failed} failed, "
                f"{counts.cancelled} cancelled"
            )
        )
    if status.cost is not None:
        lines.append(Text(f"Cost: {status.cost.shown} (estimated max {status.cost.estimated_max})"))
    if status.best is not None:
        lines.append(Text(f"Best: {status.best.shown} ({status.best.evaluation})"))
    table = status.table
    if table is None or not table.rows:
        return Group(*lines)
    grid = _table(f"DATASET \\ {(table.metric or 'metric').upper()}", *table.columns)
    for row in table.rows:
        by_column = {cell.column: cell for cell in row.cells}
        cells: list[str | Text] = [row.dataset]
        for column in table.columns:
            cell = by_column.get(column)
            cells.append(
                _cell_text(cell.value, cell.delta, cell.baseline, cell.phase)
                if cell is not None
                else Text("")
            )
        grid.add_row(*cells)
    return Group(*lines, Text(""), grid)
