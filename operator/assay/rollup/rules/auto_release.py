"""Auto-release: a run past its expiry (or a Job past its deadline) is stopped and its resources freed.

An expired debug run still takes the summary its final pod reports when stopped: its Jobs are suspended,
not deleted, for a while (:func:`expired_plan`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from assay.api import ConditionType, Evaluation, EvaluationStatus, Phase, Reason
from assay.contract import final_step
from assay.render.debug import debug_enabled
from assay.rollup.observed import Raw, job_failed, pod_state
from assay.rollup.plan import Observation, Plan
from assay.rollup.results import reported_result, results_of
from assay.rollup.rules.context import AcceptedContext

JOB_DEADLINE_EXCEEDED = "DeadlineExceeded"
# How long an expired debug run waits for its stopped final pod to report the summary (the pod's
# terminationGracePeriodSeconds is 30 s by default; the runner exits at once on SIGTERM).
DEBUG_SUMMARY_WAIT = timedelta(seconds=60)
SUMMARY_READ = "; the summary the handler reported before is in results"


def expired(ctx: AcceptedContext) -> Plan | None:
    expires_at = ctx.lifetime.expires_at
    deadline_job = next(
        (job for job in ctx.jobs.values() if (job_failed(job) or {}).get("reason") == JOB_DEADLINE_EXCEEDED),
        None,
    )
    if not ((expires_at is not None and ctx.now >= expires_at) or deadline_job is not None):
        return None
    tasks = ctx.tasks(stopped=True)
    message = f"auto-released after {ctx.lifetime.release_seconds} s: tasks stopped and their resources freed"
    ctx.conditions.set(ConditionType.EXPIRED, True, Reason.AUTO_RELEASED.value, message)
    ctx.conditions.clear(ConditionType.RUNNING, Reason.AUTO_RELEASED.value)
    reported = reported_result(ctx.evaluation, ctx.pods)
    results = results_of(ctx.evaluation, reported) if reported is not None else ctx.current.results
    shown = message + SUMMARY_READ if reported is not None else message
    status = ctx.status(Phase.EXPIRED, shown, tasks, cost=ctx.cost(tasks, ctx.now), results=results)
    return expired_plan(ctx.evaluation, status, ctx.observation, ctx.now)


def expired_plan(
    evaluation: Evaluation, status: EvaluationStatus, observation: Observation, now: datetime
) -> Plan:
    """An Expired Evaluation's actions: delete its Jobs; but while the final pod of a debug run is being
    stopped (its Jobs suspended, not deleted, so that its report is seen), wait for it a while."""
    last = final_step(evaluation.spec.tasks)
    since = status.completion_time or now
    stopping = any(p.step == last and not p.terminated for p in observation.pods)
    if debug_enabled(evaluation) and status.results is None and stopping and now < since + DEBUG_SUMMARY_WAIT:
        return Plan(status=status, suspend_jobs=True, recheck_at=since + DEBUG_SUMMARY_WAIT)
    return Plan(status=status, delete_jobs=bool(observation.jobs))


def may_report_after_expiry(evaluation: Evaluation, pod: Raw) -> bool:
    """Whether a pod's last state may hold the summary of a debug run that has none yet (worth keeping
    after the pod is deleted)."""
    state = pod_state(pod)
    return (
        debug_enabled(evaluation)
        and evaluation.status.results is None
        and state is not None
        and state.step == final_step(evaluation.spec.tasks)
        and state.phase == "Succeeded"
        and bool(state.termination_message)
    )
