"""The Evaluation state machine: observed Jobs and pods → the whole desired status, and what to do. Pure.

:func:`plan_evaluation` is the one decision function of the controller. It returns the complete status the
Evaluation should have (the controller writes it only when it differs from the stored one) and the actions
that bring the cluster there (create the next Job, stop or resume Jobs, delete them).

Phases (see the README for the diagram)::

    Pending ─▶ Queued ─▶ Running ─▶ Succeeded | Failed
       │          ▲         │  ▲
       │          └──── Suspended                      any non-terminal ─▶ Cancelled (spec.cancel)
       └─▶ Failed (rejected)                            Running/Suspended ─▶ Expired (auto-release)
    Running ─▶ Failed (CreateRefused: the apiserver refused a Job, Service or Secret for good)

A terminal phase (Succeeded, Failed, Cancelled, Expired) is never left: its status is frozen (an expired
debug run still takes the summary its final pod reports when stopped: see :func:`expired_plan`).
Everything that depends on the clock is derived from observed timestamps or changes at a single instant
(expiry), so re-running the plan on the same observations gives the same status: no write loops.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from assay.api import (
    Condition,
    ConditionType,
    Cost,
    DebugStatus,
    Evaluation,
    EvaluationStatus,
    Phase,
    Reason,
    ResourcePool,
    Results,
    TaskPhase,
    TaskStatus,
    find_condition,
    set_condition,
)
from assay.api.resources import (
    effective_auto_release_seconds,
    estimated_max_cost,
    format_money,
    price_per_hour,
    task_resources,
)
from assay.contract import (
    Step,
    TaskFailure,
    TaskResult,
    UnreadableMessage,
    final_step,
    parse_termination_message,
)
from assay.render.debug import debug_enabled
from assay.render.jobs import RenderOptions, debug_password_secret
from assay.render.names import debug_name
from assay.rollup.observed import (
    PodState,
    Raw,
    job_complete,
    job_failed,
    job_finished,
    job_suspended,
    parse_time,
    pod_state,
)
from assay.rollup.tasks import WAITING_FOR_PREDICT, TaskRollup, roll_up_tasks

# A Job can report its outcome before the watch delivers the pod that explains it: wait this long for it.
POD_REPORT_GRACE = timedelta(seconds=10)
ADMITTED = "Admitted"
TASKS_PENDING = "TasksPending"
TASKS_NOT_RUNNING = "TasksNotRunning"
JOB_DEADLINE_EXCEEDED = "DeadlineExceeded"
# How long an expired debug run waits for its stopped final pod to report the summary (the pod's
# terminationGracePeriodSeconds is 30 s by default; the runner exits at once on SIGTERM).
DEBUG_SUMMARY_WAIT = timedelta(seconds=60)
SUMMARY_READ = "; the summary the handler reported before is in results"


@dataclass(frozen=True)
class Acceptance:
    """The admission re-check's verdict on the spec against its pool, namespace and debug Secret."""

    accepted: bool
    reason: str = Reason.ACCEPTED.value
    message: str = ""
    # Not accepted now, but possibly later without touching the Evaluation (the pool may be created, the
    # namespace allowed, the Secret created): phase Pending, not Failed.
    retryable: bool = False


# Rejections an admin or the user can fix without changing the (immutable) spec.
RETRYABLE_REASONS = frozenset(
    {
        Reason.UNKNOWN_POOL.value,
        Reason.POOL_FORBIDDEN.value,
        Reason.SECRET_NOT_FOUND.value,
        Reason.DEBUG_PASSWORD_TOO_SHORT.value,
    }
)


@dataclass(frozen=True)
class QueueVerdict:
    """Whether pool quota lets the Evaluation start now (ignored once it holds quota), and whether a pool
    budget holds it back: ``budget`` names the budget, the money left and its cost. A budget verdict on an
    Evaluation that runs (or a budget suspended) means HoldAndDrain: suspended, never deleted."""

    admitted: bool
    position: int | None = None
    message: str = ""
    budget: str | None = None


@dataclass(frozen=True)
class CreateRefusal:
    """The apiserver refused to create an object the operator rendered, for a reason sending it again
    cannot fix (invalid, over a ResourceQuota, forbidden by policy)."""

    kind: str
    name: str
    status: int  # the HTTP status
    message: str  # the apiserver's

    def describe(self) -> str:
        return f"the apiserver refused to create {self.kind} {self.name} ({self.status}): {self.message}"


@dataclass(frozen=True)
class Observation:
    """The Evaluation's Jobs (this incarnation's, by step), their task pods, and a refused create."""

    jobs: Mapping[Step, Raw] = field(default_factory=dict)
    pods: Sequence[PodState] = ()
    refused: CreateRefusal | None = None


@dataclass(frozen=True)
class Plan:
    """What the controller should make true, then write."""

    status: EvaluationStatus
    create_jobs: tuple[Step, ...] = ()
    delete_jobs: bool = False
    suspend_jobs: bool | None = None  # desired spec.suspend of existing unfinished Jobs
    ensure_debug: bool = False  # the debug Service (and the generated Secret when no ref is given)
    recheck_at: datetime | None = None  # run the plan again then (auto-release, late pod reports)

    @property
    def phase(self) -> Phase | None:
        return self.status.phase


def holds_quota(evaluation: Evaluation, jobs: Mapping[Step, Raw]) -> bool:
    """True while the Evaluation's tasks count against its pool's quota: admitted, not suspended, not done."""
    phase = evaluation.status.phase
    if (phase is not None and phase.is_terminal) or evaluation.spec.suspend or evaluation.spec.cancel:
        return False
    if phase == Phase.RUNNING:
        return True
    return any(not job_finished(job) and not job_suspended(job) for job in jobs.values())


def first_task_start(evaluation: Evaluation, pods: Sequence[PodState]) -> datetime | None:
    """When the first task started (auto-release counts from here); fixed once known."""
    if evaluation.status.start_time is not None:
        return evaluation.status.start_time
    starts = [p.started for p in pods if p.started is not None]
    return min(starts) if starts else None


def _latest_observed(pods: Sequence[PodState], tasks: Sequence[TaskStatus]) -> datetime | None:
    """The latest moment the observations speak of; cost accrues up to it (not up to 'now', which would
    change the status on every reconcile)."""
    moments = [t for p in pods for t in (p.started, p.finished) if t is not None]
    moments += [t for task in tasks for t in (task.start_time, task.completion_time) if t is not None]
    return max(moments) if moments else None


def _cost(
    evaluation: Evaluation, pool: ResourcePool | None, task_seconds: float, previous: Cost | None
) -> Cost | None:
    if pool is None or pool.spec.pricing is None:
        return previous
    pricing = pool.spec.pricing
    per_task = task_resources(evaluation.spec, pool).requests
    accrued = format_money(price_per_hour(per_task, 1, pricing) * Decimal(str(task_seconds)) / 3600)
    if previous is not None and previous.accrued is not None:
        accrued = max(accrued, Decimal(previous.accrued))
    estimated = previous.estimated_max if previous is not None and previous.estimated_max else None
    if estimated is None:
        maximum = estimated_max_cost(evaluation.spec, pool)
        estimated = str(maximum) if maximum is not None else None
    return Cost(currency=pricing.currency, estimated_max=estimated, accrued=str(accrued))


def _task_name(task: TaskStatus) -> str:
    return f"{task.step.value}/{task.index}"


def describe_failure(task: TaskStatus) -> str:
    """One line naming a failed task, its attempts, exit code and reason."""
    code = f"exit code {task.exit_code}" if task.exit_code is not None else "no exit code"
    text = f"task {_task_name(task)} failed after {task.attempts} attempt(s) with {code}"
    if task.reason:
        text += f" ({task.reason})"
    if task.message:
        text += f": {task.message}"
    return text


class _Builder:
    """Accumulates conditions with the evaluation's generation and the plan's clock."""

    def __init__(self, evaluation: Evaluation, now: datetime) -> None:
        self.conditions: list[Condition] = list(evaluation.status.conditions)
        self.generation = evaluation.metadata.generation
        self.now = now

    def set(self, type_: ConditionType, status: bool, reason: str, message: str = "") -> None:
        self.conditions = set_condition(
            self.conditions,
            type_.value,
            status,
            reason,
            message,
            now=self.now,
            observed_generation=self.generation,
        )

    def clear(self, type_: ConditionType, reason: str, message: str = "") -> None:
        """Set to False only if present: conditions that never applied stay absent."""
        if find_condition(self.conditions, type_.value) is not None:
            self.set(type_, False, reason, message)


def _scheduling(tasks: TaskRollup) -> tuple[bool, str, str] | None:
    """(scheduled, reason, message) for the Scheduled condition, or None when no task pod exists yet."""
    live = [t for t in tasks.tasks if t.phase in (TaskPhase.PENDING, TaskPhase.RUNNING) and t.pod]
    for task in live:
        if task.phase == TaskPhase.PENDING and task.reason in (
            Reason.UNSCHEDULABLE,
            Reason.IMAGE_PULL_FAILED,
        ):
            return False, task.reason, f"task {_task_name(task)}: {task.message or task.reason}"
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
        text += f"; task {_task_name(stuck[0])} {stuck[0].reason}"
        if stuck[0].message:
            text += f": {stuck[0].message}"
    return text


def plan_evaluation(
    evaluation: Evaluation,
    pool: ResourcePool | None,
    observation: Observation,
    acceptance: Acceptance,
    queue: QueueVerdict,
    now: datetime,
    options: RenderOptions | None = None,
) -> Plan:
    """The desired status and the actions for one Evaluation, from everything observed about it."""
    options = options or RenderOptions()
    current = evaluation.status
    spec = evaluation.spec
    jobs = observation.jobs
    if current.phase is not None and current.phase.is_terminal:
        status = current.model_copy(update={"observed_generation": evaluation.metadata.generation})
        if current.phase == Phase.EXPIRED:
            # Frozen but for one thing: the summary a stopped debug pod reports after expiry.
            if current.results is None and (reported := reported_result(evaluation, observation.pods)):
                status = EvaluationStatus.model_validate(
                    {
                        **dict(status),
                        "results": results_of(evaluation, reported),
                        "message": f"{current.message}{SUMMARY_READ}",
                    }
                )
            return expired_plan(evaluation, status, observation, now)
        unfinished = any(not job_finished(job) for job in jobs.values())
        stop = current.phase == Phase.CANCELLED and bool(jobs)
        # A Failed evaluation's Jobs may still run tasks (e.g. results unreadable): stop those too.
        return Plan(status=status, delete_jobs=stop or (current.phase == Phase.FAILED and unfinished))

    build = _Builder(evaluation, now)
    base: dict[str, object] = {"observed_generation": evaluation.metadata.generation}
    pods = observation.pods

    def finish(
        phase: Phase,
        message: str,
        tasks: TaskRollup | None = None,
        **extra: object,
    ) -> EvaluationStatus:
        fields: dict[str, object] = {
            **{
                k: getattr(current, k)
                for k in EvaluationStatus.model_fields
                if k not in ("progress", "headline")
            },
            **base,
            "phase": phase,
            "message": message,
            "conditions": build.conditions,
        }
        if tasks is not None:
            fields["tasks"] = tasks.listed
            fields["succeeded_tasks"] = tasks.succeeded
            fields["task_counts"] = tasks.counts
        if phase != Phase.QUEUED:
            fields["queue_position"] = None
        if phase.is_terminal:
            fields["completion_time"] = now
        fields.update(extra)
        return EvaluationStatus.model_validate(fields)

    # --- cancel: terminal, whatever else is going on ----------------------------------------------------
    if spec.cancel:
        tasks = roll_up_tasks(evaluation, jobs, pods, stopped=True)
        build.set(ConditionType.CANCELLED, True, Reason.CANCELLED.value, "cancelled by spec.cancel")
        build.clear(ConditionType.RUNNING, Reason.CANCELLED.value)
        build.clear(ConditionType.QUEUED, Reason.CANCELLED.value)
        status = finish(Phase.CANCELLED, "cancelled: tasks stopped, the record is kept", tasks)
        return Plan(status=status, delete_jobs=bool(jobs))

    # --- admission re-check, only before the Evaluation holds anything ----------------------------------
    started = bool(jobs) or current.phase in (Phase.RUNNING, Phase.SUSPENDED)
    if not started and not acceptance.accepted:
        build.set(ConditionType.ACCEPTED, False, acceptance.reason, acceptance.message)
        if acceptance.retryable:
            return Plan(status=finish(Phase.PENDING, f"not accepted yet: {acceptance.message}"))
        build.set(ConditionType.FAILED, True, acceptance.reason, acceptance.message)
        return Plan(status=finish(Phase.FAILED, f"rejected: {acceptance.message}"))
    if not started or pool is not None:
        build.set(ConditionType.ACCEPTED, True, Reason.ACCEPTED.value, f"the spec fits pool {spec.pool}")

    release = effective_auto_release_seconds(spec, pool)
    start_time = first_task_start(evaluation, pods)
    expires_at = start_time + timedelta(seconds=release) if start_time is not None and release > 0 else None
    base.update(start_time=start_time, expires_at=expires_at)
    if debug_enabled(evaluation):
        secret = debug_password_secret(evaluation)
        base["debug"] = DebugStatus(
            service=debug_name(evaluation.name),
            port=options.debug_port,
            password_secret=secret[0] if secret else None,
        )

    # --- a create refused for good: nothing will ever run, the quota frees -------------------------------
    if observation.refused is not None:
        tasks = roll_up_tasks(evaluation, jobs, pods, stopped=True)
        message = observation.refused.describe()
        reason = Reason.CREATE_REFUSED.value
        build.set(ConditionType.FAILED, True, reason, message)
        build.clear(ConditionType.RUNNING, reason, message)
        status = finish(Phase.FAILED, message, tasks, cost=_cost_of(evaluation, pool, tasks, pods, now))
        return Plan(status=status, delete_jobs=any(not job_finished(job) for job in jobs.values()))

    # --- auto-release --------------------------------------------------------------------------------
    deadline_job = next(
        (job for job in jobs.values() if (job_failed(job) or {}).get("reason") == JOB_DEADLINE_EXCEEDED), None
    )
    if (expires_at is not None and now >= expires_at) or deadline_job is not None:
        tasks = roll_up_tasks(evaluation, jobs, pods, stopped=True)
        message = f"auto-released after {release} s: tasks stopped and their resources freed"
        build.set(ConditionType.EXPIRED, True, Reason.AUTO_RELEASED.value, message)
        build.clear(ConditionType.RUNNING, Reason.AUTO_RELEASED.value)
        reported = reported_result(evaluation, pods)
        results = results_of(evaluation, reported) if reported is not None else current.results
        cost = _cost_of(evaluation, pool, tasks, pods, now)
        shown = message + SUMMARY_READ if reported is not None else message
        status = finish(Phase.EXPIRED, shown, tasks, cost=cost, results=results)
        return expired_plan(evaluation, status, observation, now)

    # --- suspend -------------------------------------------------------------------------------------
    if spec.suspend:
        tasks = roll_up_tasks(evaluation, jobs, pods, stopped=True)
        build.set(ConditionType.SUSPENDED, True, Reason.SUSPENDED.value, "suspended by spec.suspend")
        build.clear(ConditionType.RUNNING, Reason.SUSPENDED.value)
        build.clear(ConditionType.QUEUED, Reason.SUSPENDED.value)
        status = finish(
            Phase.SUSPENDED,
            "suspended: tasks stopped, set spec.suspend to false to resume",
            tasks,
            cost=_cost_of(evaluation, pool, tasks, pods, None),
        )
        return Plan(status=status, suspend_jobs=True, recheck_at=expires_at)

    # --- a spent HoldAndDrain budget: suspended until it has room (what ran is kept) ----------------------
    if queue.budget is not None and (holds_quota(evaluation, jobs) or current.phase == Phase.SUSPENDED):
        tasks = roll_up_tasks(evaluation, jobs, pods, stopped=True)
        reason = Reason.BUDGET_EXHAUSTED.value
        build.set(ConditionType.SUSPENDED, True, reason, queue.budget)
        build.clear(ConditionType.RUNNING, reason)
        build.clear(ConditionType.QUEUED, reason)
        status = finish(
            Phase.SUSPENDED,
            f"suspended: {queue.budget}",
            tasks,
            cost=_cost_of(evaluation, pool, tasks, pods, None),
        )
        return Plan(status=status, suspend_jobs=True, recheck_at=expires_at)
    build.clear(ConditionType.SUSPENDED, Reason.RESUMED.value, "resumed")

    # --- quota and budgets ----------------------------------------------------------------------------
    if not holds_quota(evaluation, jobs) and (queue.budget is not None or not queue.admitted):
        waiting_for = "budget" if queue.budget is not None else "quota"
        message = queue.budget if queue.budget is not None else queue.message
        reason = Reason.BUDGET_EXHAUSTED if queue.budget is not None else Reason.WAITING_FOR_QUOTA
        build.set(ConditionType.QUEUED, True, reason.value, message)
        tasks = roll_up_tasks(evaluation, jobs, pods, stopped=bool(jobs))
        status = finish(
            Phase.QUEUED,
            f"waiting for {waiting_for} in pool {spec.pool}: {message}",
            tasks,
            queue_position=queue.position if queue.budget is None else None,
            cost=_cost_of(evaluation, pool, tasks, pods, None),
        )
        return Plan(status=status, suspend_jobs=True if jobs else None)
    build.clear(ConditionType.QUEUED, ADMITTED, f"admitted to pool {spec.pool}")

    # --- running: which Jobs should exist --------------------------------------------------------------
    tasks = roll_up_tasks(evaluation, jobs, pods, stopped=False)
    create: list[Step] = []
    last = final_step(evaluation.spec.tasks)
    if last == Step.EVALUATE:
        predict = jobs.get(Step.PREDICT)
        predict_tasks = tasks.of_step(Step.PREDICT)
        predict_done = (predict is not None and job_complete(predict)) or all(
            t.phase == TaskPhase.SUCCEEDED for t in predict_tasks
        )
        if predict is None and not predict_done:
            create.append(Step.PREDICT)
        if predict_done and Step.EVALUATE not in jobs:
            create.append(Step.EVALUATE)
    elif Step.ALL not in jobs and tasks.of_step(Step.ALL)[0].phase != TaskPhase.SUCCEEDED:
        create.append(Step.ALL)
    if pool is None and create:
        # The pool went away after acceptance: never render Jobs without its placement (no silent
        # fallback); the Jobs that exist run on, the next step waits for the pool to come back.
        build.set(
            ConditionType.ACCEPTED, False, Reason.UNKNOWN_POOL.value, f"pool {spec.pool} no longer exists"
        )
        create = []
    actions = {
        "create_jobs": tuple(create),
        "suspend_jobs": False,
        "ensure_debug": debug_enabled(evaluation),
    }
    cost = _cost_of(evaluation, pool, tasks, pods, None)

    # --- outcomes ------------------------------------------------------------------------------------
    recheck: list[datetime] = [expires_at] if expires_at is not None else []
    failed_job = next((job for job in jobs.values() if job_failed(job) is not None), None)
    if failed_job is not None:
        failed = tasks.failed()
        since = parse_time((job_failed(failed_job) or {}).get("lastTransitionTime")) or now
        if failed or now >= since + POD_REPORT_GRACE:
            message = (
                "; ".join(describe_failure(t) for t in failed)
                if failed
                else f"Job {failed_job['metadata']['name']} failed: {job_failure_message(failed_job)}"
            )
            reason = Reason.TASK_FAILED.value
            build.set(ConditionType.FAILED, True, reason, message)
            build.set(ConditionType.RUNNING, False, reason, message)
            status = finish(Phase.FAILED, message, tasks, cost=_cost_of(evaluation, pool, tasks, pods, now))
            return Plan(status=status)
        recheck.append(since + POD_REPORT_GRACE)

    final_job = jobs.get(last)
    if final_job is not None and job_complete(final_job):
        final_pod = next((p for p in pods if p.step == last and p.phase == "Succeeded"), None)
        completed = parse_time((job_complete_condition(final_job) or {}).get("lastTransitionTime")) or now
        if final_pod is not None or now >= completed + POD_REPORT_GRACE:
            return _finish_with_results(evaluation, pool, tasks, pods, final_pod, build, finish, now)
        recheck.append(completed + POD_REPORT_GRACE)

    # --- still running ---------------------------------------------------------------------------------
    if tasks.counts.running:
        build.set(ConditionType.RUNNING, True, Reason.TASKS_RUNNING.value, "tasks are running")
    else:
        build.set(ConditionType.RUNNING, False, TASKS_NOT_RUNNING, "no task is running right now")
    scheduling = _scheduling(tasks)
    if scheduling is not None:
        build.set(ConditionType.SCHEDULED, *scheduling)
    status = finish(Phase.RUNNING, _progress_message(tasks), tasks, cost=cost)
    return Plan(status=status, recheck_at=min(recheck) if recheck else None, **actions)  # type: ignore[arg-type]


def job_failure_message(job: Raw) -> str:
    return str((job_failed(job) or {}).get("message") or "no message")


def job_complete_condition(job: Raw) -> Raw | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Complete" and condition.get("status") == "True":
            return condition
    return None


def _cost_of(
    evaluation: Evaluation,
    pool: ResourcePool | None,
    tasks: TaskRollup,
    pods: Sequence[PodState],
    until: datetime | None,
) -> Cost | None:
    as_of = until or _latest_observed(pods, tasks.tasks)
    return _cost(evaluation, pool, tasks.task_seconds(as_of), evaluation.status.cost)


def _finish_with_results(
    evaluation: Evaluation,
    pool: ResourcePool | None,
    tasks: TaskRollup,
    pods: Sequence[PodState],
    final_pod: PodState | None,
    build: _Builder,
    finish: Callable[..., EvaluationStatus],
    now: datetime,
) -> Plan:
    """Succeeded with the summary from the final pod's termination message, or Failed: ResultsUnreadable."""
    cost = _cost_of(evaluation, pool, tasks, pods, now)
    try:
        if final_pod is None:
            raise UnreadableMessage(
                "the pod of the final step is gone; its termination message cannot be read"
            )
        reported = parse_termination_message(final_pod.termination_message)
        if isinstance(reported, TaskFailure):
            raise UnreadableMessage(f"the final step succeeded but reported a failure: {reported.reason}")
    except UnreadableMessage as exc:
        message = f"results unreadable: {exc}"
        reason = Reason.RESULTS_UNREADABLE.value
        build.set(ConditionType.RESULTS_UNREADABLE, True, reason, message)
        build.set(ConditionType.FAILED, True, reason, message)
        build.set(ConditionType.RUNNING, False, reason, message)
        return Plan(status=finish(Phase.FAILED, message, tasks, cost=cost))
    assert isinstance(reported, TaskResult)
    results = results_of(evaluation, reported)
    message = f"all {tasks.counts.total} task(s) succeeded"
    build.set(ConditionType.SUCCEEDED, True, Reason.ALL_TASKS_SUCCEEDED.value, message)
    build.set(ConditionType.RUNNING, False, Reason.ALL_TASKS_SUCCEEDED.value, message)
    build.clear(ConditionType.SCHEDULED, Reason.ALL_TASKS_SUCCEEDED.value, message)
    return Plan(status=finish(Phase.SUCCEEDED, message, tasks, cost=cost, results=results))


def results_of(evaluation: Evaluation, reported: TaskResult) -> Results:
    return Results(summary=dict(reported.summary), records=reported.records, location=evaluation.output_uri)


def reported_result(evaluation: Evaluation, pods: Sequence[PodState]) -> TaskResult | None:
    """The result a succeeded pod of the final step reported, if any (a debug pod reports it when stopped:
    its runner writes the termination message after the handler, and exits on SIGTERM)."""
    last = final_step(evaluation.spec.tasks)
    final_pod = next((p for p in pods if p.step == last and p.phase == "Succeeded"), None)
    if final_pod is None:
        return None
    try:
        reported = parse_termination_message(final_pod.termination_message)
    except UnreadableMessage:
        return None
    return reported if isinstance(reported, TaskResult) else None


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


QUIET_FIRST_PHASES = frozenset({Phase.RUNNING, Phase.SUSPENDED, Phase.QUEUED})


@dataclass(frozen=True)
class Notice:
    """A Kubernetes Event worth posting."""

    type: str  # Normal or Warning
    reason: str
    message: str


def transition_notices(before: EvaluationStatus, after: EvaluationStatus) -> list[Notice]:
    """Events for notable transitions only: a phase change (never the same phase twice).

    A new Evaluation's first phase posts none when it is the expected one (Running, Suspended as asked,
    Queued for quota): the status says so at once, and the Job controller records the Jobs it creates; an
    event there would be one more write for every Evaluation. A rejection (Pending, Failed) does post."""
    if after.phase is None or before.phase == after.phase:
        return []
    if before.phase is None and after.phase in QUIET_FIRST_PHASES:
        return []
    warning = after.phase == Phase.FAILED or after.phase == Phase.EXPIRED
    reason = {
        Phase.PENDING: "Pending",
        Phase.QUEUED: _reason_of(after, ConditionType.QUEUED) or Reason.WAITING_FOR_QUOTA.value,
        Phase.RUNNING: "Started" if before.phase != Phase.SUSPENDED else Reason.RESUMED.value,
        Phase.SUCCEEDED: Reason.ALL_TASKS_SUCCEEDED.value,
        Phase.FAILED: _reason_of(after, ConditionType.FAILED) or "Failed",
        Phase.SUSPENDED: _reason_of(after, ConditionType.SUSPENDED) or Reason.SUSPENDED.value,
        Phase.CANCELLED: Reason.CANCELLED.value,
        Phase.EXPIRED: Reason.AUTO_RELEASED.value,
    }[after.phase]
    return [Notice("Warning" if warning else "Normal", reason, after.message or after.phase.value)]


def _reason_of(status: EvaluationStatus, type_: ConditionType) -> str | None:
    condition = find_condition(status.conditions, type_.value)
    return condition.reason if condition is not None else None
