"""A terminal phase (Succeeded, Failed, Cancelled, Expired) is never left: its status is frozen."""

from __future__ import annotations

from assay.api import EvaluationStatus, Phase
from assay.rollup.observed import job_finished
from assay.rollup.plan import Plan
from assay.rollup.results import reported_result, results_of
from assay.rollup.rules.auto_release import SUMMARY_READ, expired_plan
from assay.rollup.rules.context import PlanContext


def frozen(ctx: PlanContext) -> Plan | None:
    """The stored status of a terminal Evaluation and the clean-up its Jobs still need; None otherwise."""
    current = ctx.current
    if current.phase is None or not current.phase.is_terminal:
        return None
    status = current.model_copy(update={"observed_generation": ctx.evaluation.metadata.generation})
    if current.phase == Phase.EXPIRED:
        # Frozen but for one thing: the summary a stopped debug pod reports after expiry.
        if current.results is None and (reported := reported_result(ctx.evaluation, ctx.pods)):
            status = EvaluationStatus.model_validate(
                {
                    **dict(status),
                    "results": results_of(ctx.evaluation, reported),
                    "message": f"{current.message}{SUMMARY_READ}",
                }
            )
        return expired_plan(ctx.evaluation, status, ctx.observation, ctx.now)
    unfinished = any(not job_finished(job) for job in ctx.jobs.values())
    stop = current.phase == Phase.CANCELLED and bool(ctx.jobs)
    # A Failed evaluation's Jobs may still run tasks (e.g. results unreadable): stop those too.
    return Plan(status=status, delete_jobs=stop or (current.phase == Phase.FAILED and unfinished))
