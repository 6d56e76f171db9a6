"""A create the apiserver refused for good: nothing will ever run, so Failed, and the quota frees."""

from __future__ import annotations

from assay.api import ConditionType, Phase, Reason
from assay.rollup.observed import job_finished
from assay.rollup.plan import Plan
from assay.rollup.rules.context import AcceptedContext


def create_refused(ctx: AcceptedContext) -> Plan | None:
    refused = ctx.observation.refused
    if refused is None:
        return None
    tasks = ctx.tasks(stopped=True)
    message = refused.describe()
    reason = Reason.CREATE_REFUSED.value
    ctx.conditions.set(ConditionType.FAILED, True, reason, message)
    ctx.conditions.clear(ConditionType.RUNNING, reason, message)
    status = ctx.status(Phase.FAILED, message, tasks, cost=ctx.cost(tasks, ctx.now))
    return Plan(status=status, delete_jobs=any(not job_finished(job) for job in ctx.jobs.values()))
