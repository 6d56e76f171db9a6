"""How the CLI shows things: pure functions from models to rich renderables or text.

No cluster access here, so every view is unit-tested on model fixtures. Tables follow kubectl's habits:
upper-case headers, no borders, one object per row; colour only marks state and trends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from assay import compare as comparing
from assay import facts
from assay.api import GROUP, Evaluation, ResourcePool, TaskStatus
from assay.attempts import TaskAttempt
from assay.cli.columns import ColumnTable
from assay.contract import STEP_ORDER

PHASE_STYLES: dict[str, str] = {
    "Pending": "yellow",
    "Queued": "yellow",
    "Running": "cyan",
    "Succeeded": "green",
    "Failed": "bold red",
    "Suspended": "magenta",
    "Cancelled": "magenta",
    "Expired": "magenta",
    "Stopped": "magenta",
    "Skipped": "magenta",
}
TREND_STYLES: dict[comparing.Trend, str] = {
    comparing.Trend.UP: "green",
    comparing.Trend.DOWN: "red",
    comparing.Trend.CHANGED: "yellow",
    comparing.Trend.SAME: "dim",
}


class ListFormat(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


class CompareFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"


def phase_text(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLES.get(phase, ""))


def _table(*headers: str) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True)
    return table


# --- machine-readable output ------------------------------------------------------------------------------


def object_name(obj: Evaluation | ResourcePool) -> str:
    """kubectl's ``-o name`` form: ``evaluation.assay.dev/NAME``."""
    return f"{obj.kind.lower()}.{GROUP}/{obj.metadata.name}"


def as_api_data(objects: Sequence[Evaluation | ResourcePool], single: bool) -> dict[str, Any]:
    """The API JSON of one object, or of several as a kubectl-style ``List``."""
    if single and len(objects) == 1:
        return objects[0].to_api()
    return {"apiVersion": "v1", "kind": "List", "items": [o.to_api() for o in objects]}


def dump(data: Any, fmt: ListFormat) -> str:
    if fmt is ListFormat.YAML:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- assay list -----------------------------------------------------------------------------------------


def headline_text(evaluation: Evaluation) -> str:
    headline = facts.headline_metric(evaluation)
    if headline is None:
        return ""
    name, value = headline
    return f"{name}={comparing.format_value(value)}"


def evaluations_table(
    evaluations: Sequence[Evaluation], *, wide: bool = False, all_namespaces: bool = False, now: datetime
) -> ColumnTable:
    headers = ["NAME", "POOL", "PHASE", "TASKS", "RESULT", "COST", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    if wide:
        headers += ["MODEL", "DATASET", "DURATION", "EXPIRES"]
    table = ColumnTable(*headers)
    for evaluation in evaluations:
        done, total = facts.tasks_done(evaluation)
        row: list[str | Text] = [
            evaluation.name,
            evaluation.spec.pool,
            phase_text(facts.phase_of(evaluation)),
            f"{done}/{total}",
            headline_text(evaluation),
            facts.cost_text(evaluation),
            facts.age(evaluation.metadata.creation_timestamp, now),
        ]
        if all_namespaces:
            row.insert(0, evaluation.namespace)
        if wide:
            model, dataset = evaluation.spec.model, evaluation.spec.dataset
            expires = evaluation.status.expires_at
            row += [
                f"{model.name}:{model.version}" if model.version else model.name,
                f"{dataset.name}:{dataset.version}" if dataset.version else dataset.name,
                facts.format_duration(facts.duration(evaluation, now)),
                facts.format_time(expires) or "",
            ]
        table.add_row(*row)
    return table


# --- assay get ------------------------------------------------------------------------------------------


def _section(title: str) -> Text:
    return Text(f"\n{title}:", style="bold")


def _pairs(pairs: Sequence[tuple[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column()
    for key, value in pairs:
        grid.add_row(f"  {key}", value if isinstance(value, Text) else comparing.format_value(value))
    return grid


def spec_pairs(evaluation: Evaluation) -> list[tuple[str, Any]]:
    spec = evaluation.spec
    pairs: list[tuple[str, Any]] = [
        ("pool", spec.pool),
        ("model", _ref(spec.model.name, spec.model.version, spec.model.uri)),
        ("handler", spec.handler),
        ("dataset", _ref(spec.dataset.name, spec.dataset.version, spec.dataset.uri)),
        (
            "runtime",
            _ref(spec.runtime.name or "", spec.runtime.version, spec.runtime.image)
            if spec.runtime
            else "default",
        ),
        ("tasks", spec.tasks),
    ]
    if spec.resources:
        pairs.append(("resources", ", ".join(f"{k}={v}" for k, v in spec.resources.items())))
    if spec.output is not None:
        pairs.append(
            ("output", f"pvc {spec.output.pvc}" + (f" {spec.output.path}" if spec.output.path else ""))
        )
    if spec.auto_release_seconds is not None:
        pairs.append(("autoRelease", facts.format_duration(spec.auto_release_seconds)))
    if spec.debug is not None and spec.debug.enabled:
        pairs.append(("debug", "enabled"))
    if spec.suspend:
        pairs.append(("suspend", True))
    if spec.cancel:
        pairs.append(("cancel", True))
    return pairs


def _ref(name: str, version: str | None, where: str | None) -> str:
    text = f"{name} {version}" if version else name
    return f"{text}  ({where})" if where else text


def _fact_text(evaluation: Evaluation, key: str, value: comparing.Value) -> comparing.Value:
    """A sys fact as ``assay get`` shows it: durations also in kubectl's form, cost with its currency."""
    if key == "sys/duration" and isinstance(value, int | float):
        return f"{comparing.format_value(value)}s ({facts.format_duration(value)})"
    if key == "sys/cost":
        return facts.cost_text(evaluation)
    return value


def evaluation_details(evaluation: Evaluation, *, now: datetime) -> RenderableType:
    """``assay get NAME``: spec at a glance, sys facts, metrics, results, conditions, debug hint."""
    status = evaluation.status
    phase = facts.phase_of(evaluation)
    parts: list[RenderableType] = [
        _pairs(
            [
                ("Name", evaluation.name),
                ("Namespace", evaluation.namespace),
                ("Phase", phase_text(phase)),
                *([("Message", status.message)] if status.message else []),
                *([("Queue position", status.queue_position)] if status.queue_position else []),
            ]
        ),
        _section("Spec"),
        _pairs(spec_pairs(evaluation)),
        _section("Facts"),
        _pairs(
            [
                (k, _fact_text(evaluation, k, v))
                for k, v in facts.sys_facts(evaluation, now).items()
                if v is not None
            ]
        ),
    ]
    metrics = facts.summary(evaluation)
    parts += [_section("Summary"), _pairs(list(metrics.items())) if metrics else Text("  (no results yet)")]
    if status.results is not None and (status.results.location or status.results.records is not None):
        parts += [
            _section("Results"),
            _pairs(
                [
                    *([("records", status.results.records)] if status.results.records is not None else []),
                    *([("location", status.results.location)] if status.results.location else []),
                ]
            ),
        ]
    if status.expires_at is not None and not facts.is_terminal(evaluation):
        parts += [_section("Auto-release"), _pairs([("expires", facts.format_time(status.expires_at))])]
    if status.conditions:
        table = _table("  TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
        for condition in status.conditions:
            table.add_row(
                f"  {condition.type}",
                condition.status.value,
                condition.reason,
                facts.age(condition.last_transition_time, now),
                condition.message,
            )
        table.columns[-1].no_wrap = False
        parts += [_section("Conditions"), table]
    hint = facts.debug_hint(evaluation)
    if hint is not None:
        parts += [_section("Debug"), Text(f"  {hint}")]
    return Group(*parts)


# --- assay tasks ----------------------------------------------------------------------------------------


def _task_key(step: str, index: int) -> tuple[int, str, int]:
    return STEP_ORDER.get(step, len(STEP_ORDER)), step, index  # unknown steps last


def task_rows(
    tasks: Sequence[TaskStatus], attempts: Sequence[TaskAttempt], *, now: datetime
) -> list[list[str | Text]]:
    """One row per attempt while its pod exists; a task whose pods are gone shows its status entry.

    Columns: step, index, attempt, phase, node, start, duration, exit code, reason, pod.
    """
    by_task: dict[tuple[str, int], list[TaskAttempt]] = {}
    for attempt in attempts:
        by_task.setdefault((attempt.step, attempt.index), []).append(attempt)
    keys = {(t.step.value, t.index) for t in tasks} | set(by_task)
    status_of = {(t.step.value, t.index): t for t in tasks}
    rows: list[list[str | Text]] = []
    for step, index in sorted(keys, key=lambda k: _task_key(*k)):
        pods = by_task.get((step, index), [])
        if pods:
            for attempt in pods:
                end = attempt.completion_time or (None if attempt.phase in ("Succeeded", "Failed") else now)
                spent = end - attempt.start_time if attempt.start_time is not None and end else None
                rows.append(
                    [
                        step,
                        str(index),
                        str(attempt.attempt),
                        phase_text(attempt.phase),
                        attempt.node or "",
                        facts.format_time(attempt.start_time) or "",
                        facts.format_duration(spent),
                        "" if attempt.exit_code is None else str(attempt.exit_code),
                        attempt.reason or "",
                        attempt.pod,
                    ]
                )
            continue
        task = status_of[(step, index)]
        end = task.completion_time or (now if task.phase.value == "Running" else None)
        spent = end - task.start_time if task.start_time is not None and end is not None else None
        rows.append(
            [
                step,
                str(index),
                str(task.attempts) if task.attempts else "",
                phase_text(task.phase.value),
                task.node or "",
                facts.format_time(task.start_time) or "",
                facts.format_duration(spent),
                "" if task.exit_code is None else str(task.exit_code),
                task.reason or "",
                task.pod or "",
            ]
        )
    return rows


def tasks_table(rows: Sequence[Sequence[str | Text]], *, wide: bool = False) -> Table:
    headers = ["STEP", "INDEX", "ATTEMPT", "PHASE", "NODE", "START", "DURATION", "EXIT", "REASON"]
    if wide:
        headers.append("POD")
    table = _table(*headers)
    for row in rows:
        table.add_row(*(row if wide else row[: len(headers)]))
    return table


# --- assay pools ----------------------------------------------------------------------------------------


def _resources(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def price_text(pool: ResourcePool) -> str:
    pricing = pool.spec.pricing
    if pricing is None or not pricing.per_hour:
        return ""
    return f"{_resources(pricing.per_hour)} {pricing.currency}/h"


def budgets_text(pool: ResourcePool) -> str:
    """``team Warning 85.00/100.00 EUR``, one per budget (the details: ``assay budgets``)."""
    return ", ".join(
        f"{b.name} {b.state.value} {b.spent}/{b.spend_limit} {b.currency}" for b in pool.status.budgets
    )


def pools_table(pools: Sequence[ResourcePool], *, wide: bool = False) -> Table:
    headers = ["NAME", "NODES", "CAPACITY", "IN USE", "QUOTA", "RUNNING", "QUEUED", "PRICE"]
    if wide:
        headers += ["BUDGETS", "DESCRIPTION"]
    table = _table(*headers)
    for pool in pools:
        status = pool.status
        row: list[str] = [
            pool.name,
            "" if status.nodes is None else str(status.nodes),
            _resources(status.capacity),
            _resources(status.in_use),
            _resources(pool.spec.quota),
            str(status.running_evaluations),
            str(status.queued_evaluations),
            price_text(pool),
        ]
        if wide:
            row += [budgets_text(pool), pool.spec.description or ""]
        table.add_row(*row)
    return table


def _window_text(start: datetime, end: datetime | None) -> str:
    return f"{start:%Y-%m-%d %H:%M} - {f'{end:%Y-%m-%d %H:%M}' if end is not None else 'never'}"


def budgets_table(pools: Sequence[ResourcePool]) -> Table:
    """One row per budget of every pool, as its status last showed it (money in the pool's currency)."""
    table = _table(
        "POOL", "BUDGET", "STATE", "SPENT", "COMMITTED", "REMAINING", "LIMIT", "WAITING", "WINDOW (UTC)"
    )
    for pool in pools:
        shown = {b.name: b for b in pool.status.budgets}
        for budget in pool.spec.budgets:
            status = shown.get(budget.name)
            if status is None:  # not counted yet by the operator
                table.add_row(pool.name, budget.name, "", "", "", "", budget.spend_limit, "", "")
                continue
            money = [
                f"{amount} {status.currency}"
                for amount in (status.spent, status.committed, status.remaining, status.spend_limit)
            ]
            table.add_row(
                pool.name,
                budget.name,
                status.state.value,
                *money,
                str(status.waiting),
                _window_text(status.window_start, status.window_end),
            )
    return table


# --- assay compare --------------------------------------------------------------------------------------


def comparison_table(comparison: comparing.Comparison) -> Table:
    table = _table("KEY")
    for i, subject in enumerate(comparison.subjects):
        title = Text(comparing.column_title(subject, i == 0))
        if subject.running:
            title.stylize("yellow")
        table.add_column(title, no_wrap=True)
    for row in comparison.rows:
        cells: list[str | Text] = [row.key]
        for cell in row.cells:
            text = Text(comparing.format_value(cell.value))
            if cell.trend is comparing.Trend.CHANGED:
                text.stylize(TREND_STYLES[cell.trend])
            mark = comparing.mark_text(cell)
            if mark:
                text.append(" " + mark, style=TREND_STYLES.get(cell.trend, ""))
            cells.append(text)
        table.add_row(*cells)
    return table


def comparison_text(comparison: comparing.Comparison, fmt: CompareFormat) -> str:
    """The non-table formats (json, csv, markdown) as plain text."""
    if fmt is CompareFormat.JSON:
        return comparing.to_json(comparison) + "\n"
    if fmt is CompareFormat.CSV:
        return comparing.to_csv(comparison)
    if fmt is CompareFormat.MARKDOWN:
        return comparing.to_markdown(comparison)
    raise ValueError(f"{fmt} is rendered as a table")
