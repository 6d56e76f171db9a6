"""An Evaluation's cost: the money its tasks have run up, and the most they may. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from assay.api import Cost, Evaluation, ResourcePool, TaskStatus
from assay.api.resources import estimated_max_cost, format_money, price_per_hour, task_resources
from assay.rollup.observed import PodState
from assay.rollup.tasks import TaskRollup


def latest_observed(pods: Sequence[PodState], tasks: Sequence[TaskStatus]) -> datetime | None:
    """The latest moment the observations speak of; cost accrues up to it (not up to 'now', which would
    change the status on every reconcile)."""
    moments = [t for p in pods for t in (p.started, p.finished) if t is not None]
    moments += [t for task in tasks for t in (task.start_time, task.completion_time) if t is not None]
    return max(moments) if moments else None


def cost_for_seconds(
    evaluation: Evaluation, pool: ResourcePool | None, task_seconds: float, previous: Cost | None
) -> Cost | None:
    """``task_seconds`` of task time at the pool's prices; never less than ``previous`` accrued."""
    if pool is None or pool.spec.pricing is None:
        return previous
    pricing = pool.spec.pricing
    per_task = task_resources(evaluation.spec, pool).requests
    accrued = format_money(price_per_hour(per_task, 1, pricing) * Decimal(str(task_seconds)) / 3600)
    if previous is not None and previous.accrued is not None:
        accrued = max(accrued, Decimal(previous.accrued))
    estimated = previous.estimated_max if previous is not None and previous.estimated_max else None
    if estimated is None:
        maximum = estimated_max_cost(evaluation.spec, pool)
        estimated = str(maximum) if maximum is not None else None
    return Cost(currency=pricing.currency, estimated_max=estimated, accrued=str(accrued))


def cost_of(
    evaluation: Evaluation,
    pool: ResourcePool | None,
    tasks: TaskRollup,
    pods: Sequence[PodState],
    until: datetime | None,
) -> Cost | None:
    """The cost of the rolled-up tasks up to ``until`` (a terminal phase's instant), else up to the latest
    observed moment."""
    as_of = until or latest_observed(pods, tasks.tasks)
    return cost_for_seconds(evaluation, pool, tasks.task_seconds(as_of), evaluation.status.cost)
