"""Per-task status from observed Jobs and pods: phase, attempts, node, exit code and why. No I/O.

A task's pods may disappear (finished Jobs are deleted after a retention period, suspend deletes pods), so
what was seen before is kept: observations update an entry, absence of pods never erases one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from assay.api import (
    LISTED_TASKS_LIMIT,
    Evaluation,
    EvaluationStatus,
    Reason,
    SucceededTasks,
    TaskCounts,
    TaskPhase,
    TaskStatus,
    format_index_ranges,
    parse_index_ranges,
)
from assay.contract import (
    Step,
    TaskFailure,
    UnreadableMessage,
    parse_termination_message,
    reason_for_exit_code,
    task_slots,
)
from assay.rollup.observed import (
    CONFIG_ERROR_REASONS,
    IMAGE_PULL_REASONS,
    PodState,
    Raw,
    completed_indexes,
    failed_indexes,
)

RETRYING = "Retrying"
WAITING_FOR_PREDICT = "WaitingForPredict"
PREDICT_FAILED = "PredictFailed"


def failure_of(pod: PodState) -> tuple[str, str | None]:
    """(reason, message) of a failed pod: what the runner reported, else its exit code's reason."""
    if pod.exit_code is None:
        return pod.reason or "PodFailed", pod.message
    if pod.termination_message:
        try:
            reported = parse_termination_message(pod.termination_message)
        except UnreadableMessage:
            reported = None
        if isinstance(reported, TaskFailure):
            return reported.reason, reported.message or None
    return reason_for_exit_code(pod.exit_code), None


def _waiting_reason(pod: PodState) -> tuple[str | None, str | None]:
    """Why a pending pod is not running, in the Evaluation's vocabulary (None: just starting)."""
    if pod.reason is None:
        return None, None
    if pod.reason == "Unschedulable":
        return Reason.UNSCHEDULABLE.value, pod.message
    if pod.reason in IMAGE_PULL_REASONS:
        detail = f"{pod.reason}: {pod.message}" if pod.message else pod.reason
        return Reason.IMAGE_PULL_FAILED.value, detail
    if pod.reason in CONFIG_ERROR_REASONS:
        return pod.reason, pod.message
    return None, None


def task_status(
    step: Step,
    index: int,
    pods: Sequence[PodState],
    job: Raw | None,
    previous: TaskStatus | None,
    *,
    stopped: bool,
) -> TaskStatus:
    """One task's entry from its pods (oldest first), its Job and what status said before."""
    if not pods:
        # Finished tasks keep their entry after their pods are gone (Job retention, restarts).
        if previous is not None and previous.phase in (TaskPhase.SUCCEEDED, TaskPhase.FAILED):
            return previous
        if job is not None and index in completed_indexes(job):
            # The Job remembers the success even when the pod was garbage-collected unseen.
            return TaskStatus(
                step=step,
                index=index,
                phase=TaskPhase.SUCCEEDED,
                attempts=max(1, previous.attempts if previous is not None else 0),
                start_time=previous.start_time if previous is not None else None,
                node=previous.node if previous is not None else None,
                exit_code=0,
            )
        reason = WAITING_FOR_PREDICT if step == Step.EVALUATE and job is None and not stopped else None
        return TaskStatus(
            step=step,
            index=index,
            phase=TaskPhase.STOPPED if stopped else TaskPhase.PENDING,
            attempts=previous.attempts if previous is not None else 0,
            start_time=previous.start_time if previous is not None else None,
            reason=reason,
        )

    latest = pods[-1]
    starts = [p.started for p in pods if p.started is not None]
    if previous is not None and previous.start_time is not None:
        starts.append(previous.start_time)
    # Evicted or preempted pods are gone once replaced; the replacement's count still remembers them.
    attempts = max(
        len(pods),
        max(p.earlier_attempts for p in pods) + 1,
        previous.attempts if previous is not None else 0,
    )
    base = {
        "step": step,
        "index": index,
        "pod": latest.name,
        "node": latest.node,
        "attempts": attempts,
        "start_time": min(starts) if starts else None,
    }
    succeeded = next((p for p in pods if p.phase == "Succeeded"), None)
    if succeeded is not None:
        return TaskStatus(
            **{**base, "pod": succeeded.name, "node": succeeded.node},
            phase=TaskPhase.SUCCEEDED,
            completion_time=succeeded.finished,
            exit_code=0 if succeeded.exit_code is None else succeeded.exit_code,
        )
    if job is not None and index in failed_indexes(job):
        failed = next((p for p in reversed(pods) if p.phase == "Failed"), latest)
        reason, message = failure_of(failed)
        return TaskStatus(
            **{**base, "pod": failed.name, "node": failed.node},
            phase=TaskPhase.FAILED,
            completion_time=failed.finished,
            exit_code=failed.exit_code,
            reason=reason,
            message=message,
        )
    if stopped:
        return TaskStatus(**base, phase=TaskPhase.STOPPED)
    if latest.phase == "Running" and not latest.deleting:
        return TaskStatus(**base, phase=TaskPhase.RUNNING)
    if latest.phase == "Failed":
        # Failed, but its Job still retries it: say so, with what the attempt reported.
        reason, message = failure_of(latest)
        return TaskStatus(
            **base,
            phase=TaskPhase.PENDING,
            exit_code=latest.exit_code,
            reason=RETRYING,
            message=f"attempt {len(pods)} failed ({reason}){': ' + message if message else ''}",
        )
    reason, message = _waiting_reason(latest)
    return TaskStatus(**base, phase=TaskPhase.PENDING, reason=reason, message=message)


@dataclass(frozen=True)
class TaskRollup:
    """All tasks of an Evaluation and their counts; ``listed`` and ``succeeded`` are what status keeps
    (``tasks`` and ``succeededTasks``): in a large Evaluation succeeded predict tasks are indexes only."""

    tasks: list[TaskStatus]
    counts: TaskCounts
    listed: list[TaskStatus]
    succeeded: SucceededTasks | None = None

    def task_seconds(self, as_of: datetime | None) -> float:
        """Seconds all tasks held their resources (see :func:`accrued_task_seconds`)."""
        return accrued_task_seconds(self.listed, as_of) + (
            self.succeeded.task_seconds if self.succeeded else 0
        )

    def of_step(self, step: Step) -> list[TaskStatus]:
        return [t for t in self.tasks if t.step == step]

    def failed(self) -> list[TaskStatus]:
        return [t for t in self.tasks if t.phase == TaskPhase.FAILED]


def roll_up_tasks(
    evaluation: Evaluation,
    jobs: Mapping[Step, Raw],
    pods: Sequence[PodState],
    *,
    stopped: bool,
) -> TaskRollup:
    """Every task of the Evaluation, merged with the entries its status already had."""
    previous = {(t.step, t.index): t for t in evaluation.status.tasks}
    unlisted = evaluation.status.succeeded_tasks
    unlisted_indexes = parse_index_ranges(unlisted.predict) if unlisted is not None else set()
    by_slot: dict[tuple[Step, int], list[PodState]] = {}
    for pod in pods:
        by_slot.setdefault((pod.step, pod.index), []).append(pod)
    tasks = [
        # A success listed only by its index stays one, whatever its pods still say.
        TaskStatus(step=step, index=index, phase=TaskPhase.SUCCEEDED)
        if step == Step.PREDICT and index in unlisted_indexes
        else task_status(
            step,
            index,
            by_slot.get((step, index), []),
            jobs.get(step),
            previous.get((step, index)),
            stopped=stopped,
        )
        for step, index in task_slots(evaluation.spec.tasks)
    ]
    tasks = skip_evaluate_after_failed_predict(tasks)
    listed, succeeded = bound_task_list(tasks, unlisted)
    return TaskRollup(tasks=tasks, counts=count_tasks(tasks), listed=listed, succeeded=succeeded)


def bound_task_list(
    tasks: list[TaskStatus], unlisted: SucceededTasks | None
) -> tuple[list[TaskStatus], SucceededTasks | None]:
    """The entries status lists, and the succeeded predict tasks it keeps as indexes only.

    Up to LISTED_TASKS_LIMIT tasks, every one is listed. Beyond, a predict task that succeeds leaves the list
    for good; the seconds it ran are added once, when it leaves (the cost still counts them)."""
    if len(tasks) <= LISTED_TASKS_LIMIT and unlisted is None:
        return tasks, None
    unlisted = unlisted or SucceededTasks()
    indexes = parse_index_ranges(unlisted.predict)
    leaving = [
        t
        for t in tasks
        if t.step == Step.PREDICT and t.phase == TaskPhase.SUCCEEDED and t.index not in indexes
    ]
    indexes |= {t.index for t in leaving}
    listed = [t for t in tasks if not (t.step == Step.PREDICT and t.index in indexes)]
    succeeded = SucceededTasks(
        predict=format_index_ranges(indexes),
        task_seconds=unlisted.task_seconds + accrued_task_seconds(leaving, None),
    )
    return listed, succeeded


def accrued_task_seconds(tasks: Sequence[TaskStatus], as_of: datetime | None) -> float:
    """Seconds tasks held their resources: from start to completion, or to ``as_of`` while running."""
    total = 0.0
    for task in tasks:
        if task.start_time is None:
            continue
        end = task.completion_time or as_of
        if end is not None and end > task.start_time:
            total += (end - task.start_time).total_seconds()
    return total


def status_task_seconds(status: EvaluationStatus, as_of: datetime | None) -> float:
    """Seconds all tasks of a written status held their resources, the unlisted successes included."""
    unlisted = status.succeeded_tasks.task_seconds if status.succeeded_tasks is not None else 0
    return accrued_task_seconds(status.tasks, as_of) + unlisted


def skip_evaluate_after_failed_predict(tasks: list[TaskStatus]) -> list[TaskStatus]:
    """The evaluate step never starts once a predict task failed past its retries: say so, not Pending."""
    failed = [str(t.index) for t in tasks if t.step == Step.PREDICT and t.phase == TaskPhase.FAILED]
    if not failed:
        return tasks
    message = f"not run: predict task{'s' if len(failed) > 1 else ''} {', '.join(failed)} failed"
    return [
        t.model_copy(update={"phase": TaskPhase.SKIPPED, "reason": PREDICT_FAILED, "message": message})
        if t.step == Step.EVALUATE and t.phase in (TaskPhase.PENDING, TaskPhase.STOPPED) and t.pod is None
        else t
        for t in tasks
    ]


def count_tasks(tasks: Sequence[TaskStatus]) -> TaskCounts:
    """Counts per phase; stopped tasks count as pending (they run again on resume, or never)."""

    def count(*phases: TaskPhase) -> int:
        return sum(1 for t in tasks if t.phase in phases)

    return TaskCounts(
        total=len(tasks),
        pending=count(TaskPhase.PENDING, TaskPhase.STOPPED),
        running=count(TaskPhase.RUNNING),
        succeeded=count(TaskPhase.SUCCEEDED),
        failed=count(TaskPhase.FAILED),
        skipped=count(TaskPhase.SKIPPED),
    )


def task_name(task: TaskStatus) -> str:
    """How messages name a task: ``step/index``."""
    return f"{task.step.value}/{task.index}"
