"""Outcomes of a running Evaluation: Failed when a Job failed, Succeeded when the final step's pod reported
its result (or Failed: ResultsUnreadable when the final step's Job completed without one).

A Job can report its outcome before the watch delivers the pod that explains it: each rule then waits a
grace period for that pod (:class:`WaitForReport`) before deciding without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from assay.api import ConditionType, Phase, Reason, TaskStatus
from assay.contract import TaskFailure, TaskResult, UnreadableMessage, final_step, parse_termination_message
from assay.rollup.observed import PodState, Raw, job_complete, job_condition, job_failed, parse_time
from assay.rollup.plan import Plan
from assay.rollup.results import final_pod, reported_result, results_of
from assay.rollup.rules.context import AcceptedContext
from assay.rollup.tasks import TaskRollup, task_name

POD_REPORT_GRACE = timedelta(seconds=10)
# How long a final pod the watch still shows alive is waited for after its Job completed.
POD_SHOWN_ALIVE_LIMIT = timedelta(minutes=5)


@dataclass(frozen=True)
class WaitForReport:
    """The outcome is known but not yet explained by a pod: plan again at ``until``."""

    until: datetime


def failed(ctx: AcceptedContext, tasks: TaskRollup) -> Plan | WaitForReport | None:
    """Failed with the failed tasks (or the Job's own message, once no pod explains it in time)."""
    failed_job = next((job for job in ctx.jobs.values() if job_failed(job) is not None), None)
    if failed_job is None:
        return None
    failed_tasks = tasks.failed()
    since = parse_time((job_failed(failed_job) or {}).get("lastTransitionTime")) or ctx.now
    if not failed_tasks and ctx.now < since + POD_REPORT_GRACE:
        return WaitForReport(since + POD_REPORT_GRACE)
    message = (
        "; ".join(describe_failure(t) for t in failed_tasks)
        if failed_tasks
        else f"Job {failed_job['metadata']['name']} failed: {job_failure_message(failed_job)}"
    )
    reason = Reason.TASK_FAILED.value
    ctx.conditions.set(ConditionType.FAILED, True, reason, message)
    ctx.conditions.set(ConditionType.RUNNING, False, reason, message)
    return Plan(status=ctx.status(Phase.FAILED, message, tasks, cost=ctx.cost(tasks, ctx.now)))


def succeeded(ctx: AcceptedContext, tasks: TaskRollup) -> Plan | WaitForReport | None:
    """Once the final step's Job is complete: Succeeded with its pod's summary, or ResultsUnreadable.

    The final step is one task: its pod succeeding with a readable result is the outcome already, so that
    decides without waiting for the Job controller (which folds pod updates for a second or more before it
    marks the Job Complete)."""
    final_job = ctx.jobs.get(final_step(ctx.spec.tasks))
    if final_job is None:
        return None
    pod = final_pod(ctx.evaluation, ctx.pods)
    if not job_complete(final_job):
        if pod is not None and reported_result(ctx.evaluation, ctx.pods) is not None:
            return _with_results(ctx, tasks, pod)
        return None
    completed = parse_time((job_condition(final_job, "Complete") or {}).get("lastTransitionTime")) or ctx.now
    if pod is None and ctx.now < completed + POD_REPORT_GRACE:
        return WaitForReport(completed + POD_REPORT_GRACE)
    if pod is None and _final_pod_shown_alive(ctx) and ctx.now < completed + POD_SHOWN_ALIVE_LIMIT:
        # The Job is complete, so its pod has ended: a busy operator's pod watch lags behind its Job watch,
        # and the pod's end is on its way. Deciding now would call a success ResultsUnreadable.
        return WaitForReport(ctx.now + POD_REPORT_GRACE)
    return _with_results(ctx, tasks, pod)


def _final_pod_shown_alive(ctx: AcceptedContext) -> bool:
    last = final_step(ctx.spec.tasks)
    return any(p.step == last and not p.terminated and not p.deleting for p in ctx.pods)


def _with_results(ctx: AcceptedContext, tasks: TaskRollup, pod: PodState | None) -> Plan:
    """Succeeded with the summary from the final pod's termination message, or Failed: ResultsUnreadable."""
    cost = ctx.cost(tasks, ctx.now)
    try:
        if pod is None:
            raise UnreadableMessage(
                "the pod of the final step is gone; its termination message cannot be read"
            )
        reported = parse_termination_message(pod.termination_message)
        if isinstance(reported, TaskFailure):
            raise UnreadableMessage(f"the final step succeeded but reported a failure: {reported.reason}")
    except UnreadableMessage as exc:
        message = f"results unreadable: {exc}"
        reason = Reason.RESULTS_UNREADABLE.value
        ctx.conditions.set(ConditionType.RESULTS_UNREADABLE, True, reason, message)
        ctx.conditions.set(ConditionType.FAILED, True, reason, message)
        ctx.conditions.set(ConditionType.RUNNING, False, reason, message)
        return Plan(status=ctx.status(Phase.FAILED, message, tasks, cost=cost))
    assert isinstance(reported, TaskResult)
    results = results_of(ctx.evaluation, reported)
    message = f"all {tasks.counts.total} task(s) succeeded"
    ctx.conditions.set(ConditionType.SUCCEEDED, True, Reason.ALL_TASKS_SUCCEEDED.value, message)
    ctx.conditions.set(ConditionType.RUNNING, False, Reason.ALL_TASKS_SUCCEEDED.value, message)
    ctx.conditions.clear(ConditionType.SCHEDULED, Reason.ALL_TASKS_SUCCEEDED.value, message)
    return Plan(status=ctx.status(Phase.SUCCEEDED, message, tasks, cost=cost, results=results))


def describe_failure(task: TaskStatus) -> str:
    """One line naming a failed task, its attempts, exit code and reason."""
    code = f"exit code {task.exit_code}" if task.exit_code is not None else "no exit code"
    text = f"task {task_name(task)} failed after {task.attempts} attempt(s) with {code}"
    if task.reason:
        text += f" ({task.reason})"
    if task.message:
        text += f": {task.message}"
    return text


def job_failure_message(job: Raw) -> str:
    return str((job_failed(job) or {}).get("message") or "no message")
