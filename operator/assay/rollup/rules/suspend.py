"""Suspended: by spec.suspend, or by a spent HoldAndDrain budget until it has room (what ran is kept).

Suspended tasks are stopped, their Jobs kept; resuming carries on where they stopped.
"""

from __future__ import annotations

from assay.api import ConditionType, Phase, Reason
from assay.rollup.plan import Plan
from assay.rollup.rules.context import AcceptedContext
from assay.rollup.rules.quota import holds_quota

_BY_SPEC = "suspended: tasks stopped, set spec.suspend to false to resume"


def suspended(ctx: AcceptedContext) -> Plan | None:
    """The Suspended plan, or None with Suspended cleared (resumed)."""
    if ctx.spec.suspend:
        return _suspend(ctx, Reason.SUSPENDED.value, "suspended by spec.suspend", _BY_SPEC)
    budget = ctx.queue.budget
    if budget is not None and (holds_quota(ctx.evaluation, ctx.jobs) or ctx.current.phase == Phase.SUSPENDED):
        return _suspend(ctx, Reason.BUDGET_EXHAUSTED.value, budget, f"suspended: {budget}")
    ctx.conditions.clear(ConditionType.SUSPENDED, Reason.RESUMED.value, "resumed")
    return None


def _suspend(ctx: AcceptedContext, reason: str, why: str, message: str) -> Plan:
    tasks = ctx.tasks(stopped=True)
    ctx.conditions.set(ConditionType.SUSPENDED, True, reason, why)
    ctx.conditions.clear(ConditionType.RUNNING, reason)
    ctx.conditions.clear(ConditionType.QUEUED, reason)
    status = ctx.status(Phase.SUSPENDED, message, tasks, cost=ctx.cost(tasks))
    return Plan(status=status, suspend_jobs=True, recheck_at=ctx.lifetime.expires_at)
