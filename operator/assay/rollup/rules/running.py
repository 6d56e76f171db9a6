"""Running: which Jobs should exist, and the status while tasks run (progress, Running, Scheduled)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from assay.api import ConditionType, Phase, Reason, TaskPhase
from assay.contract import Step, final_step
from assay.render.debug import debug_enabled
from assay.rollup.observed import job_complete
from assay.rollup.plan import Plan
from assay.rollup.rules.context import AcceptedContext
from assay.rollup.tasks import WAITING_FOR_PREDICT, TaskRollup, task_name

TASKS_PENDING = "TasksPending"
TASKS_NOT_RUNNING = "TasksNotRunning"


def jobs_to_create(ctx: AcceptedContext, tasks: TaskRollup) -> tuple[Step, ...]:
    """The Jobs of the next step, when it is due and not created yet: predict, then evaluate once predict
    is done (or the single all-in-one Job)."""
    jobs = ctx.jobs
    create: list[Step] = []
    if final_step(ctx.spec.tasks) == Step.EVALUATE:
        predict = jobs.get(Step.PREDICT)
        predict_done = (predict is not None and job_complete(predict)) or all(
            t.phase == TaskPhase.SUCCEEDED for t in tasks.of_step(Step.PREDICT)
        )
        if predict is None and not predict_done:
            create.append(Step.PREDICT)
        if predict_done and Step.EVALUATE not in jobs:
            create.append(Step.EVALUATE)
    elif Step.ALL not in jobs and tasks.of_step(Step.ALL)[0].phase != TaskPhase.SUCCEEDED:
        create.append(Step.ALL)
    if ctx.pool is None and create:
        # The pool went away after acceptance: never render Jobs without its placement (no silent
        # fallback); the Jobs that exist run on, the next step waits for the pool to come back.
        ctx.conditions.set(
            ConditionType.ACCEPTED, False, Reason.UNKNOWN_POOL.value, f"pool {ctx.spec.pool} no longer exists"
        )
        return ()
    return tuple(create)


def still_running(
    ctx: AcceptedContext, tasks: TaskRollup, create: tuple[Step, ...], rechecks: Sequence[datetime]
) -> Plan:
    """The Running plan: create the due Jobs, resume suspended ones, plan again at the earliest of the
    expiry and ``rechecks`` (pod reports awaited)."""
    if tasks.counts.running:
        ctx.conditions.set(ConditionType.RUNNING, True, Reason.TASKS_RUNNING.value, "tasks are running")
    else:
        ctx.conditions.set(ConditionType.RUNNING, False, TASKS_NOT_RUNNING, "no task is running right now")
    scheduling = _scheduling(tasks)
    if scheduling is not None:
        ctx.conditions.set(ConditionType.SCHEDULED, *scheduling)
    status = ctx.status(Phase.RUNNING, _progress_message(tasks), tasks, cost=ctx.cost(tasks))
    moments = [t for t in (ctx.lifetime.expires_at, *rechecks) if t is not None]
    return Plan(
        status=status,
        create_jobs=create,
        suspend_jobs=False,
        ensure_debug=debug_enabled(ctx.evaluation),
        recheck_at=min(moments) if moments else None,
    )


def _scheduling(tasks: TaskRollup) -> tuple[bool, str, str] | None:
    """(scheduled, reason, message) for the Scheduled condition, or None when no task pod exists yet."""
    live = [t for t in tasks.tasks if t.phase in (TaskPhase.PENDING, TaskPhase.RUNNING) and t.pod]
    for task in live:
        if task.phase == TaskPhase.PENDING and task.reason in (
            Reason.UNSCHEDULABLE,
            Reason.IMAGE_PULL_FAILED,
        ):
            return False, task.reason, f"task {task_name(task)}: {task.message or task.reason}"
    if not live:
        return None
    if all(t.node for t in live):
        return True, Reason.PODS_SCHEDULED.value, "every task pod is bound to a node"
    return False, TASKS_PENDING, "task pods are waiting for the scheduler"


def _progress_message(tasks: TaskRollup) -> str:
    counts = tasks.counts
    text = f"{counts.succeeded}/{counts.total} tasks succeeded"
    if counts.running:
        text += f", {counts.running} running"
    stuck = [
        t
        for t in tasks.tasks
        if t.phase == TaskPhase.PENDING and t.reason and t.reason != WAITING_FOR_PREDICT
    ]
    if stuck:
        text += f"; task {task_name(stuck[0])} {stuck[0].reason}"
        if stuck[0].message:
            text += f": {stuck[0].message}"
    return text
