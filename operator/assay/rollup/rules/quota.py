"""Queued: waiting for pool quota or a pool budget before the Evaluation starts (or, once it has Jobs,
with them suspended)."""

from __future__ import annotations

from collections.abc import Mapping

from assay.api import ConditionType, Evaluation, Phase, Reason
from assay.contract import Step
from assay.rollup.observed import Raw, job_finished, job_suspended
from assay.rollup.plan import Plan
from assay.rollup.rules.context import AcceptedContext

ADMITTED = "Admitted"


def holds_quota(evaluation: Evaluation, jobs: Mapping[Step, Raw]) -> bool:
    """True while the Evaluation's tasks count against its pool's quota: admitted, not suspended, not done."""
    phase = evaluation.status.phase
    if (phase is not None and phase.is_terminal) or evaluation.spec.suspend or evaluation.spec.cancel:
        return False
    if phase == Phase.RUNNING:
        return True
    return any(not job_finished(job) and not job_suspended(job) for job in jobs.values())


def queued(ctx: AcceptedContext) -> Plan | None:
    """The Queued plan while neither quota nor budget lets the Evaluation start; else None, Admitted.
    In a pool in Kueue mode only its budgets hold an Evaluation here: Kueue's quota decides the rest
    (:mod:`assay.rollup.rules.kueue`, the next rule, which also keeps the Queued condition)."""
    queue = ctx.queue
    if ctx.pool is not None and ctx.pool.uses_kueue:
        if queue.budget is None or holds_quota(ctx.evaluation, ctx.jobs):
            return None
    elif holds_quota(ctx.evaluation, ctx.jobs) or (queue.budget is None and queue.admitted):
        ctx.conditions.clear(ConditionType.QUEUED, ADMITTED, f"admitted to pool {ctx.spec.pool}")
        return None
    by_budget = queue.budget is not None
    waiting_for = "budget" if by_budget else "quota"
    message = queue.budget if queue.budget is not None else queue.message
    reason = Reason.BUDGET_EXHAUSTED if by_budget else Reason.WAITING_FOR_QUOTA
    ctx.conditions.set(ConditionType.QUEUED, True, reason.value, message)
    tasks = ctx.tasks(stopped=bool(ctx.jobs))
    status = ctx.status(
        Phase.QUEUED,
        f"waiting for {waiting_for} in pool {ctx.spec.pool}: {message}",
        tasks,
        queue_position=None if by_budget else queue.position,
        cost=ctx.cost(tasks),
    )
    return Plan(status=status, suspend_jobs=True if ctx.jobs else None)
