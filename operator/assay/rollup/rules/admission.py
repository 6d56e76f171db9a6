"""The admission re-check, only before the Evaluation holds anything: Pending while the rejection can be
fixed without touching the spec, Failed when it cannot."""

from __future__ import annotations

from assay.api import ConditionType, Phase, Reason
from assay.rollup.plan import Plan
from assay.rollup.rules.context import PlanContext


def rejected(ctx: PlanContext) -> Plan | None:
    """The Pending or Failed plan of a spec admission does not accept; else None, with Accepted recorded
    (left as it is for a started Evaluation whose pool is gone)."""
    acceptance = ctx.acceptance
    started = bool(ctx.jobs) or ctx.current.phase in (Phase.RUNNING, Phase.SUSPENDED)
    if not started and not acceptance.accepted:
        ctx.conditions.set(ConditionType.ACCEPTED, False, acceptance.reason, acceptance.message)
        if acceptance.retryable:
            return Plan(status=ctx.status(Phase.PENDING, f"not accepted yet: {acceptance.message}"))
        ctx.conditions.set(ConditionType.FAILED, True, acceptance.reason, acceptance.message)
        return Plan(status=ctx.status(Phase.FAILED, f"rejected: {acceptance.message}"))
    if not started or ctx.pool is not None:
        ctx.conditions.set(
            ConditionType.ACCEPTED, True, Reason.ACCEPTED.value, f"the spec fits pool {ctx.spec.pool}"
        )
    return None
