"""An EvaluationSet as pure functions: its combinations, the children to create or change, its status.

:func:`expand` turns the matrix into :class:`Combo`\\ s (Tekton's ``matrix.params`` product, GitHub Actions'
``exclude``, then Tekton's ``include`` as extra combinations); :func:`set_problems` says why a set cannot
run (the webhook refuses it with that, the controller sets ``Accepted=False``); :func:`plan_set` reads the
children the operator sees and decides what to create, suspend or cancel, and the whole status, with the
comparison table (datasets x the other axes, OpenCompass's layout) built from the children's summaries.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from assay.api import (
    API_VERSION,
    AXES,
    EVALUATION_KIND,
    EVALUATION_SET_KIND,
    MAX_COMBINATIONS,
    ComparisonTable,
    ConditionType,
    EvaluationSet,
    EvaluationSetSpec,
    EvaluationSetStatus,
    EvaluationSpec,
    Phase,
    set_condition,
)
from assay.api.evaluation_set import Best, SetCost, SetCounts, TableCell, TableRow
from assay.compare import decimal_difference, is_number
from assay.render.names import LABEL_EVALUATION_SET, LABEL_MANAGED_BY, MANAGER, label_value, set_child_name

# Label of each axis value on a child (when the value's key is a valid label value).
AXIS_LABELS = {
    "model": "assay.dev/model",
    "dataset": "assay.dev/dataset",
    "runtime": "assay.dev/runtime",
    "batchSize": "assay.dev/batch-size",
}
# Failed children named in the Failed condition's message; the rest are counted.
NAMED_FAILURES = 10
_FAILED_PHASES = {Phase.FAILED.value, Phase.EXPIRED.value, Phase.CANCELLED.value}
_TERMINAL = {p.value for p in Phase if p.is_terminal}


def value_key(axis: str, value: Any) -> str:
    """How a value is named in the table, the baseline and the labels: ``name@version`` for models,
    datasets and runtimes (the image when a runtime has no name), ``cpu=4,memory=8Gi`` for resources."""
    if axis in ("model", "dataset", "runtime"):
        name = value.get("name") or value.get("image") or ""
        return f"{name}@{value['version']}" if value.get("version") else str(name)
    if axis == "resources":
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


@dataclass(frozen=True)
class Combo:
    """One combination: its values (API JSON, by axis), their keys, and the child's name."""

    values: Mapping[str, Any]
    keys: Mapping[str, str]
    child: str

    @property
    def title(self) -> str:
        return " / ".join(self.keys[a] for a in AXES if a in self.keys)


def _combo(set_name: str, values: Mapping[str, Any]) -> Combo:
    ordered = {a: values[a] for a in AXES if a in values}
    keys = {a: value_key(a, v) for a, v in ordered.items()}
    return Combo(ordered, keys, set_name and set_child_name(set_name, json.dumps(ordered, sort_keys=True)))


def _axes(spec: EvaluationSetSpec) -> dict[str, list[Any]]:
    matrix = spec.matrix.to_api()
    return {axis: matrix[axis] for axis in AXES if matrix.get(axis) is not None}


def _entry_keys(entry: Mapping[str, Any]) -> dict[str, str]:
    return {a: value_key(a, entry[a]) for a in AXES if a in entry}


def expand(spec: EvaluationSetSpec, set_name: str = "") -> list[Combo]:
    """Every combination, in order: the product of the axes (the first axis varies slowest) without the
    ones an ``exclude`` entry matches (all of its named values equal, by key), then each ``include``
    entry that is not already there."""
    axes = _axes(spec)
    excludes = [_entry_keys(entry.to_api()) for entry in spec.matrix.exclude]
    combos: list[Combo] = []
    seen: set[str] = set()
    product = itertools.product(*axes.values()) if axes else iter(())
    for values in product:
        combo = _combo(set_name, dict(zip(axes, values, strict=True)))
        if any(all(combo.keys.get(a) == k for a, k in ex.items()) for ex in excludes if ex):
            continue
        if combo.child not in seen or not set_name:
            combos.append(combo)
            seen.add(combo.child)
    for entry in spec.matrix.include:
        combo = _combo(set_name, entry.to_api())
        if json.dumps(combo.values, sort_keys=True) not in {
            json.dumps(c.values, sort_keys=True) for c in combos
        }:
            combos.append(combo)
    return combos


def child_spec(spec: EvaluationSetSpec, combo: Combo) -> EvaluationSpec:
    """The template's spec with the combination's values (raises ValidationError when incomplete)."""
    merged = {**spec.template.spec.to_api(), **combo.values, "suspend": spec.suspend, "cancel": spec.cancel}
    return EvaluationSpec.model_validate(merged)


def set_problems(spec: EvaluationSetSpec) -> list[str]:
    """Why the set cannot run, each with what to fix; empty when it can."""
    combos = expand(spec)
    if not combos:
        return ["the matrix has no combination (exclude removes them all, or it has no axis and no include)"]
    if len(combos) > MAX_COMBINATIONS:
        return [f"the matrix has {len(combos)} combinations, more than {MAX_COMBINATIONS}: split it"]
    problems: list[str] = []
    for combo in combos:
        try:
            child_spec(spec, combo)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()[:3]
            )
            problems.append(f"combination {combo.title or '(template)'} is not a valid Evaluation: {details}")
            break  # the others share the template; one example says what to fix
    axes = _axes(spec)
    for axis, values in axes.items():
        keys = [value_key(axis, v) for v in values]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            problems.append(
                f"matrix.{axis} has values that share a key ({', '.join(twice)}): give them distinct "
                "names or versions, so the table and the baseline can tell them apart"
            )
    for axis, wanted in (spec.baseline or {}).items():
        known = sorted({c.keys[axis] for c in combos if axis in c.keys})
        if wanted not in known:
            problems.append(
                f"baseline {axis}: {wanted!r} is not in the matrix; "
                f"use one of: {', '.join(known) or '(none)'}"
            )
    return problems


def child_evaluation(evaluation_set: EvaluationSet, combo: Combo) -> dict[str, Any]:
    """The child Evaluation of a combination, owned by the set (garbage-collected with it)."""
    spec = evaluation_set.spec
    labels = {
        **spec.template.metadata.labels,
        LABEL_EVALUATION_SET: label_value(evaluation_set.name),
        LABEL_MANAGED_BY: MANAGER,
    }
    for axis, label in AXIS_LABELS.items():
        key = combo.keys.get(axis)
        value = key.replace("@", "-") if key is not None else ""  # '@' may not be in a label value
        if key is not None and _is_label_value(value):
            labels[label] = value
    return {
        "apiVersion": API_VERSION,
        "kind": EVALUATION_KIND,
        "metadata": {
            "name": combo.child,
            "namespace": evaluation_set.namespace,
            "labels": labels,
            "annotations": dict(spec.template.metadata.annotations),
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": EVALUATION_SET_KIND,
                    "name": evaluation_set.name,
                    "uid": evaluation_set.metadata.uid or "",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": child_spec(spec, combo).to_api(),
    }


def _is_label_value(text: str) -> bool:
    return len(text) <= 63 and re.fullmatch(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?", text) is not None


@dataclass(frozen=True)
class Child:
    """What the set reads of one child Evaluation (from the operator's index)."""

    name: str
    phase: str | None = None
    suspend: bool = False
    cancel: bool = False
    summary: Mapping[str, Any] = field(default_factory=dict)
    cost: Mapping[str, Any] | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Child:
        spec, status = raw.get("spec") or {}, raw.get("status") or {}
        return cls(
            name=(raw.get("metadata") or {}).get("name", ""),
            phase=status.get("phase"),
            suspend=bool(spec.get("suspend")),
            cancel=bool(spec.get("cancel")),
            summary=(status.get("results") or {}).get("summary") or {},
            cost=status.get("cost"),
        )

    @property
    def finished(self) -> bool:
        return self.phase in _TERMINAL


@dataclass
class SetPlan:
    """What to do for a set: children to create (in order), to patch, and the status to write."""

    status: EvaluationSetStatus
    create: list[Combo] = field(default_factory=list)
    suspend: dict[str, bool] = field(default_factory=dict)  # child name -> spec.suspend wanted
    cancel: list[str] = field(default_factory=list)


def plan_set(
    evaluation_set: EvaluationSet,
    children: Mapping[str, Child],
    creating: Sequence[str],
    now: datetime,
    refused: str | None = None,
) -> SetPlan:
    """Decide for one set. ``children`` are the owned children the index shows, by name; ``creating`` the
    names this process created that the index does not show yet (they count as unfinished); ``refused``
    the apiserver's message when it refused a child for good."""
    spec = evaluation_set.spec
    problems = set_problems(spec)
    combos = [] if problems else expand(spec, evaluation_set.name)
    mine = {c.child for c in combos}
    seen = {name: child for name, child in children.items() if name in mine or not combos}
    counts = _counts(len(combos), seen, creating)
    failures = [c.name for c in seen.values() if c.phase in _FAILED_PHASES]
    unfinished = [n for n in creating if n not in seen] + [c.name for c in seen.values() if not c.finished]
    stopped_by_failures = spec.max_failed is not None and len(failures) >= spec.max_failed
    plan = SetPlan(status=EvaluationSetStatus())
    may_create = not (problems or refused or spec.suspend or spec.cancel or stopped_by_failures)
    if may_create:
        room = (spec.parallelism or len(combos)) - len(unfinished)
        todo = [c for c in combos if c.child not in seen and c.child not in creating]
        plan.create = todo[: max(room, 0)]
    for child in seen.values():
        if child.finished:
            continue
        if spec.cancel and not child.cancel:
            plan.cancel.append(child.name)
        elif not spec.cancel and child.suspend != spec.suspend:
            plan.suspend[child.name] = spec.suspend

    all_created = len(seen) >= len(combos)
    phase, reason, message = _phase(
        evaluation_set, problems, refused, counts, failures, unfinished, all_created, stopped_by_failures
    )
    status = evaluation_set.status
    conditions = list(status.conditions)
    generation = evaluation_set.metadata.generation

    def condition(type_: str, value: bool, why: str, text: str) -> None:
        nonlocal conditions
        conditions = set_condition(
            conditions, type_, value, why, text, now=now, observed_generation=generation
        )

    condition(ConditionType.ACCEPTED.value, not problems, "InvalidMatrix" if problems else "Accepted",
              "; ".join(problems) if problems else f"{len(combos)} combinations")  # fmt: skip
    for type_ in ("Running", "Succeeded", "Failed", "Suspended", "Cancelled"):
        active = phase == type_
        condition(type_, active, reason if active else f"Not{type_}", message if active else "")
    plan.status = EvaluationSetStatus(
        phase=phase,
        observed_generation=generation,
        conditions=conditions,
        counts=counts,
        progress=f"{counts.succeeded}/{counts.combinations}",
        cost=_cost(seen.values()),
        best=_best(spec, combos, seen),
        table=_table(spec, combos, seen) if combos else None,
        message=message,
    )
    return plan


def _counts(total: int, seen: Mapping[str, Child], creating: Sequence[str]) -> SetCounts:
    counts = SetCounts(combinations=total, created=len(set(seen) | set(creating)))
    for child in seen.values():
        match child.phase:
            case Phase.RUNNING.value:
                counts.running += 1
            case Phase.SUSPENDED.value:
                counts.suspended += 1
            case Phase.SUCCEEDED.value:
                counts.succeeded += 1
            case Phase.FAILED.value | Phase.EXPIRED.value:
                counts.failed += 1
            case Phase.CANCELLED.value:
                counts.cancelled += 1
            case _:
                counts.pending += 1
    counts.pending += len([n for n in creating if n not in seen])
    return counts


def _phase(
    evaluation_set: EvaluationSet,
    problems: Sequence[str],
    refused: str | None,
    counts: SetCounts,
    failures: Sequence[str],
    unfinished: Sequence[str],
    all_created: bool,
    stopped_by_failures: bool,
) -> tuple[str, str, str]:
    spec = evaluation_set.spec
    if problems:
        return "Failed", "InvalidMatrix", "; ".join(problems)
    if refused:
        return "Failed", "CreateRefused", f"a child Evaluation was refused: {refused}"
    if spec.cancel:
        return "Cancelled", "Cancelled", "cancelled: every child is cancelled and no new one is created"
    if counts.combinations and counts.succeeded == counts.combinations:
        return "Succeeded", "AllSucceeded", f"all {counts.combinations} combinations succeeded"
    if failures and not unfinished and (all_created or stopped_by_failures):
        named = ", ".join(sorted(failures)[:NAMED_FAILURES])
        more = len(failures) - NAMED_FAILURES
        why = f" (maxFailed {spec.max_failed} reached)" if stopped_by_failures and not all_created else ""
        tail = f" and {more} more" if more > 0 else ""
        return "Failed", "ChildrenFailed", f"{len(failures)} failed{why}: {named}{tail}"
    if spec.suspend:
        return "Suspended", "Suspended", "suspended: every child is suspended and no new one is created"
    if counts.created:
        return (
            "Running",
            "ChildrenRunning",
            (f"{counts.succeeded} of {counts.combinations} succeeded, {len(unfinished)} unfinished"),
        )
    return "Pending", "Pending", "no child created yet"


def _decimal(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _cost(children: Sequence[Child] | Any) -> SetCost | None:
    costs = [c.cost for c in children if c.cost]
    if not costs:
        return None
    accrued = sum((_decimal(c.get("accrued") or 0) for c in costs), Decimal(0))
    estimated = sum((_decimal(c.get("estimatedMax") or 0) for c in costs), Decimal(0))
    currency = str(costs[0].get("currency") or "USD")
    shown = f"{accrued} {currency}"
    return SetCost(currency=currency, accrued=str(accrued), estimated_max=str(estimated), shown=shown)


def _metric(spec: EvaluationSetSpec, seen: Mapping[str, Child]) -> str | None:
    if spec.objective is not None:
        return spec.objective.metric
    for child in seen.values():
        for key, value in child.summary.items():
            if is_number(value):
                return key
    return None


def _best(spec: EvaluationSetSpec, combos: Sequence[Combo], seen: Mapping[str, Child]) -> Best | None:
    if spec.objective is None:
        return None
    metric, sign = spec.objective.metric, (1 if spec.objective.goal == "maximize" else -1)
    best: tuple[float, Combo] | None = None
    for combo in combos:
        child = seen.get(combo.child)
        value = child.summary.get(metric) if child and child.phase == Phase.SUCCEEDED.value else None
        if is_number(value) and (best is None or sign * float(value) > sign * best[0]):
            best = (float(value), combo)
    if best is None:
        return None
    value, combo = best
    return Best(
        evaluation=combo.child,
        combination=combo.title,
        metric=metric,
        value=value,
        shown=f"{metric}={value:.4g} {combo.title}"[:128],
    )


def _reference(
    spec: EvaluationSetSpec, combo: Combo, by_keys: Mapping[tuple[Any, ...], Combo]
) -> Combo | None:
    """The baseline of ``combo``'s row: the combination with the baseline's values on its axes and
    ``combo``'s values on the others."""
    if not spec.baseline:
        return None
    keys = {**combo.keys, **spec.baseline}
    return by_keys.get(tuple(sorted(keys.items())))


def _table(spec: EvaluationSetSpec, combos: Sequence[Combo], seen: Mapping[str, Child]) -> ComparisonTable:
    metric = _metric(spec, seen)
    by_keys = {tuple(sorted(c.keys.items())): c for c in combos}

    def value_of(combo: Combo | None) -> float | None:
        child = seen.get(combo.child) if combo else None
        value = child.summary.get(metric) if child and metric else None
        return float(value) if is_number(value) else None

    columns: dict[str, None] = {}
    rows: dict[str, list[TableCell]] = {}
    for combo in combos:
        column = " / ".join(k for a, k in combo.keys.items() if a != "dataset") or "-"
        columns.setdefault(column, None)
        reference = _reference(spec, combo, by_keys)
        value, base = value_of(combo), value_of(reference)
        child = seen.get(combo.child)
        cell = TableCell(
            column=column,
            evaluation=combo.child,
            phase=child.phase if child else None,
            value=value,
            delta=decimal_difference(value, base)
            if value is not None and base is not None and reference is not combo
            else None,
            baseline=reference is combo,
        )
        rows.setdefault(combo.keys.get("dataset", "-"), []).append(cell)
    return ComparisonTable(
        metric=metric,
        columns=list(columns),
        rows=[TableRow(dataset=dataset, cells=cells) for dataset, cells in rows.items()],
    )
