"""spec.cancel: terminal, whatever else is going on; the record is kept, the Jobs go."""

from __future__ import annotations

from assay.api import ConditionType, Phase, Reason
from assay.rollup.plan import Plan
from assay.rollup.rules.context import PlanContext


def cancelled(ctx: PlanContext) -> Plan | None:
    if not ctx.spec.cancel:
        return None
    tasks = ctx.tasks(stopped=True)
    ctx.conditions.set(ConditionType.CANCELLED, True, Reason.CANCELLED.value, "cancelled by spec.cancel")
    ctx.conditions.clear(ConditionType.RUNNING, Reason.CANCELLED.value)
    ctx.conditions.clear(ConditionType.QUEUED, Reason.CANCELLED.value)
    status = ctx.status(Phase.CANCELLED, "cancelled: tasks stopped, the record is kept", tasks)
    return Plan(status=status, delete_jobs=bool(ctx.jobs))
