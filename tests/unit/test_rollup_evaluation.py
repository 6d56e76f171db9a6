"""The Evaluation state machine: observed Jobs and pods → status and actions (pure; no cluster)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from assay.api import (
    ConditionType,
    Evaluation,
    EvaluationStatus,
    Phase,
    ResourcePool,
    TaskPhase,
    find_condition,
)
from assay.contract import Step, failure_message, result_message
from assay.rollup import (
    Acceptance,
    CreateRefusal,
    Observation,
    Plan,
    QueueVerdict,
    holds_quota,
    is_progress_only,
    owned_jobs,
    plan_evaluation,
    pods_of,
    status_changes,
    transition_notices,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ACCEPTED = Acceptance(accepted=True)
ADMITTED = QueueVerdict(admitted=True)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


POOL = ResourcePool.model_validate(
    {
        "metadata": {"name": "a100"},
        "spec": {
            "resources": [{"name": "nvidia.com/gpu", "default": "1"}],
            "quota": {"nvidia.com/gpu": "8"},
            "pricing": {"currency": "USD", "perHour": {"nvidia.com/gpu": "3.60"}},
            "autoRelease": {"defaultSeconds": 3600},
        },
    }
)


# The spec of the sample Evaluation "ev" (two tasks in pool a100), shared with controller_fakes.
SPEC: dict[str, Any] = {
    "pool": "a100",
    "model": {"name": "m", "uri": "pvc://models/m"},
    "handler": "h:H",
    "dataset": {"name": "d", "uri": "pvc://data/d"},
    "tasks": 2,
    "output": {"pvc": "out"},
}


def make_evaluation(status: dict[str, Any] | None = None, **spec: Any) -> Evaluation:
    return Evaluation.model_validate(
        {
            "metadata": {"name": "ev", "namespace": "ns", "uid": "ev-uid", "generation": 1},
            "spec": {**SPEC, **spec},
            "status": status or {},
        }
    )


def job(
    step: Step,
    *,
    complete: bool = False,
    failed: str | None = None,
    failed_indexes: str = "",
    completed_indexes: str = "",
    suspend: bool = False,
    at: float = 0,
) -> dict[str, Any]:
    conditions = []
    if complete:
        conditions.append({"type": "Complete", "status": "True", "lastTransitionTime": ts(at)})
    if failed:
        conditions.append(
            {"type": "Failed", "status": "True", "reason": failed, "lastTransitionTime": ts(at)}
        )
    name = "ev-predict" if step == Step.PREDICT else "ev-evaluate"
    return {
        "metadata": {
            "name": name,
            "uid": f"{name}-uid",
            "labels": {"assay.dev/evaluation": "ev", "assay.dev/step": step.value},
            "ownerReferences": [{"uid": "ev-uid", "kind": "Evaluation", "name": "ev"}],
        },
        "spec": {"suspend": suspend},
        "status": {
            "conditions": conditions,
            "failedIndexes": failed_indexes,
            "completedIndexes": completed_indexes,
        },
    }


def pod(
    step: Step,
    index: int,
    phase: str,
    *,
    attempt: int = 0,
    node: str | None = "gpu-1",
    started: float | None = 0,
    finished: float | None = None,
    exit_code: int | None = None,
    message: str | None = None,
    waiting: str | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    name = f"ev-{step.value}-{index}-{attempt}"
    state: dict[str, Any] = {}
    if phase == "Running":
        state = {"running": {"startedAt": ts(started or 0)}}
    elif phase in ("Succeeded", "Failed"):
        state = {
            "terminated": {
                "exitCode": exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1),
                "startedAt": ts(started or 0),
                "finishedAt": ts(finished or 10),
            }
        }
        if message is not None:
            state["terminated"]["message"] = message
    elif waiting:
        state = {"waiting": {"reason": waiting, "message": f"{waiting} for image x"}}
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "task", "state": state}]}
    if unschedulable:
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
                }
            ],
        }
        node = None
    job_name = "ev-predict" if step == Step.PREDICT else "ev-evaluate"
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": ts(attempt),
            "labels": {
                "assay.dev/evaluation": "ev",
                "assay.dev/step": step.value,
                "batch.kubernetes.io/controller-uid": f"{job_name}-uid",
            },
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "spec": {"nodeName": node} if node else {},
        "status": status,
    }


def plan(
    ev: Evaluation,
    jobs: list[dict[str, Any]] = (),
    pods: list[dict[str, Any]] = (),  # type: ignore[assignment]
    *,
    now: float = 60,
    acceptance: Acceptance = ACCEPTED,
    queue: QueueVerdict = ADMITTED,
    refused: CreateRefusal | None = None,
) -> Plan:
    owned = owned_jobs(list(jobs), "ev-uid")
    observation = Observation(jobs=owned, pods=pods_of(list(pods), owned), refused=refused)
    return plan_evaluation(ev, POOL, observation, acceptance, queue, T0 + timedelta(seconds=now))


def after(ev: Evaluation, p: Plan) -> Evaluation:
    """The Evaluation as it is once the plan's status is written."""
    return ev.model_copy(update={"status": p.status})


def condition(p: Plan, type_: ConditionType) -> tuple[str, str] | None:
    c = find_condition(p.status.conditions, type_.value)
    return (c.status.value, c.reason) if c else None


def test_new_evaluation_creates_the_predict_job_and_runs() -> None:
    p = plan(make_evaluation())
    assert p.create_jobs == (Step.PREDICT,)
    assert p.phase == Phase.RUNNING
    assert condition(p, ConditionType.ACCEPTED) == ("True", "Accepted")
    assert p.status.observed_generation == 1
    assert p.status.task_counts is not None and p.status.task_counts.total == 3
    assert p.status.cost is not None and p.status.cost.estimated_max == "7.20"  # 2 GPUs x 1 h x 3.60


def test_single_task_creates_one_job_running_everything() -> None:
    p = plan(make_evaluation(tasks=1))
    assert p.create_jobs == (Step.ALL,)
    assert [(t.step, t.index) for t in p.status.tasks] == [(Step.ALL, 0)]


def test_running_pods_make_tasks_running_and_start_the_auto_release_clock() -> None:
    pods = [pod(Step.PREDICT, 0, "Running", started=5), pod(Step.PREDICT, 1, "Running", started=7)]
    p = plan(make_evaluation(), [job(Step.PREDICT)], pods)
    assert p.create_jobs == ()
    assert [t.phase for t in p.status.tasks] == [TaskPhase.RUNNING, TaskPhase.RUNNING, TaskPhase.PENDING]
    assert p.status.tasks[0].node == "gpu-1"
    assert p.status.start_time == T0 + timedelta(seconds=5)
    assert p.status.expires_at == T0 + timedelta(seconds=3605)
    assert p.recheck_at == p.status.expires_at
    assert condition(p, ConditionType.RUNNING) == ("True", "TasksRunning")
    assert condition(p, ConditionType.SCHEDULED) == ("True", "PodsScheduled")


def test_unschedulable_and_image_pull_are_reported_as_such() -> None:
    pods = [
        pod(Step.PREDICT, 0, "Pending", unschedulable=True),
        pod(Step.PREDICT, 1, "Pending", waiting="ImagePullBackOff"),
    ]
    p = plan(make_evaluation(), [job(Step.PREDICT)], pods)
    tasks = p.status.tasks
    assert (tasks[0].phase, tasks[0].reason) == (TaskPhase.PENDING, "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in (tasks[0].message or "")
    assert (tasks[1].phase, tasks[1].reason) == (TaskPhase.PENDING, "ImagePullFailed")
    assert condition(p, ConditionType.SCHEDULED) == ("False", "Unschedulable")
    assert condition(p, ConditionType.RUNNING) == ("False", "TasksNotRunning")
    assert p.status.task_counts is not None and p.status.task_counts.running == 0


def test_predict_done_creates_the_evaluate_job() -> None:
    pods = [pod(Step.PREDICT, i, "Succeeded", finished=20) for i in range(2)]
    p = plan(make_evaluation(), [job(Step.PREDICT, complete=True)], pods)
    assert p.create_jobs == (Step.EVALUATE,)
    assert p.phase == Phase.RUNNING


def test_evaluate_summary_makes_the_evaluation_succeed() -> None:
    jobs = [job(Step.PREDICT, complete=True), job(Step.EVALUATE, complete=True)]
    pods = [pod(Step.PREDICT, i, "Succeeded", finished=20) for i in range(2)]
    pods.append(
        pod(
            Step.EVALUATE,
            0,
            "Succeeded",
            started=30,
            finished=40,
            message=result_message({"accuracy": 0.98, "f1": 0.97}, records=100),
        )
    )
    ev = make_evaluation()
    p = plan(ev, jobs, pods, now=45)
    assert p.phase == Phase.SUCCEEDED
    assert p.status.results is not None
    assert p.status.results.summary == {"accuracy": 0.98, "f1": 0.97}
    assert p.status.results.records == 100
    assert p.status.results.location == "pvc://out/ns/ev"
    assert p.status.headline == "accuracy=0.98"
    assert condition(p, ConditionType.SUCCEEDED) == ("True", "AllTasksSucceeded")
    assert p.status.completion_time == T0 + timedelta(seconds=45)
    assert p.status.task_counts is not None and p.status.task_counts.succeeded == 3
    # 2 predict tasks x 20 s + evaluate 10 s = 50 GPU-seconds at 3.60/h = 0.05
    assert p.status.cost is not None and p.status.cost.accrued == "0.05"


def test_complete_job_waits_for_the_pod_report_then_gives_up() -> None:
    jobs = [job(Step.PREDICT, complete=True), job(Step.EVALUATE, complete=True, at=40)]
    early = plan(make_evaluation(), jobs, [], now=41)
    assert early.phase == Phase.RUNNING
    assert early.recheck_at == T0 + timedelta(seconds=50)
    late = plan(make_evaluation(), jobs, [], now=51)
    assert late.phase == Phase.FAILED
    assert condition(late, ConditionType.RESULTS_UNREADABLE) == ("True", "ResultsUnreadable")


@pytest.mark.parametrize("message", ["not json at all", json.dumps({"summary": "flat"}), "x" * 5000, None])
def test_unreadable_summary_fails_with_results_unreadable(message: str | None) -> None:
    jobs = [job(Step.EVALUATE, complete=True)]
    pods = [pod(Step.ALL, 0, "Succeeded", message=message)]
    pods[0]["metadata"]["labels"]["assay.dev/step"] = "all"
    jobs[0]["metadata"]["labels"]["assay.dev/step"] = "all"
    p = plan(make_evaluation(tasks=1), jobs, pods)
    assert p.phase == Phase.FAILED
    assert condition(p, ConditionType.RESULTS_UNREADABLE) == ("True", "ResultsUnreadable")
    assert condition(p, ConditionType.FAILED) == ("True", "ResultsUnreadable")


def test_task_failing_past_retries_fails_naming_task_and_exit_code() -> None:
    jobs = [job(Step.PREDICT, failed="FailedIndexes", failed_indexes="1")]
    pods = [
        pod(Step.PREDICT, 0, "Running"),
        pod(Step.PREDICT, 1, "Failed", attempt=0, exit_code=12),
        pod(
            Step.PREDICT,
            1,
            "Failed",
            attempt=1,
            exit_code=12,
            message=failure_message("HandlerFailed", "record 17: division by zero"),
        ),
    ]
    p = plan(make_evaluation(), jobs, pods)
    assert p.phase == Phase.FAILED
    failed = p.status.tasks[1]
    assert (failed.phase, failed.exit_code, failed.attempts, failed.reason) == (
        TaskPhase.FAILED,
        12,
        2,
        "HandlerFailed",
    )
    assert condition(p, ConditionType.FAILED) == ("True", "TaskFailed")
    assert "task predict/1" in (p.status.message or "")
    assert "exit code 12" in (p.status.message or "")
    assert "record 17" in (p.status.message or "")


def test_failed_attempt_that_will_be_retried_is_not_a_failure() -> None:
    pods = [pod(Step.PREDICT, 0, "Failed", exit_code=13)]
    p = plan(make_evaluation(), [job(Step.PREDICT)], pods)
    assert p.phase == Phase.RUNNING
    task = p.status.tasks[0]
    assert (task.phase, task.reason, task.exit_code) == (TaskPhase.PENDING, "Retrying", 13)
    assert "DatasetUnreadable" in (task.message or "")


def test_auto_release_expires_and_deletes_jobs() -> None:
    ev = make_evaluation(autoReleaseSeconds=60)
    running = plan(ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running", started=0)], now=30)
    assert running.phase == Phase.RUNNING
    assert running.recheck_at == T0 + timedelta(seconds=60)
    ev = after(ev, running)
    expired = plan(ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running", started=0)], now=60)
    assert expired.phase == Phase.EXPIRED
    assert expired.delete_jobs
    assert condition(expired, ConditionType.EXPIRED) == ("True", "AutoReleased")
    assert all(t.phase == TaskPhase.STOPPED for t in expired.status.tasks)


REFUSED = CreateRefusal("Job", "ev-evaluate", 403, 'jobs "ev-evaluate" is forbidden: exceeded quota: jobs')


def test_a_refused_create_fails_with_the_apiservers_message_and_frees_the_quota() -> None:
    ev = make_evaluation()
    p = plan(ev, [job(Step.PREDICT, complete=True)], [pod(Step.PREDICT, 0, "Succeeded")], refused=REFUSED)
    assert p.phase == Phase.FAILED
    assert p.create_jobs == ()
    failed = find_condition(p.status.conditions, ConditionType.FAILED.value)
    assert failed is not None and failed.is_true and failed.reason == "CreateRefused"
    assert "Job ev-evaluate" in failed.message and "exceeded quota: jobs" in failed.message
    assert "exceeded quota: jobs" in p.status.message
    assert not p.delete_jobs  # nothing runs any more
    assert not holds_quota(after(ev, p), owned_jobs([job(Step.PREDICT, complete=True)], "ev-uid"))
    (notice,) = transition_notices(ev.status, p.status)
    assert (notice.type, notice.reason) == ("Warning", "CreateRefused")


def test_a_refused_create_stops_the_jobs_still_running() -> None:
    refused = plan(make_evaluation(), [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running")], refused=REFUSED)
    assert refused.phase == Phase.FAILED and refused.delete_jobs


def test_job_deadline_is_an_expiry_too() -> None:
    p = plan(make_evaluation(), [job(Step.PREDICT, failed="DeadlineExceeded")], [])
    assert p.phase == Phase.EXPIRED


def test_suspend_and_resume() -> None:
    ev = make_evaluation()
    running = plan(ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running")])
    ev = after(ev, running)
    suspended_ev = ev.model_copy(update={"spec": ev.spec.model_copy(update={"suspend": True})})
    suspended = plan(suspended_ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running")])
    assert suspended.phase == Phase.SUSPENDED
    assert suspended.suspend_jobs is True
    assert condition(suspended, ConditionType.SUSPENDED) == ("True", "Suspended")
    assert not holds_quota(after(suspended_ev, suspended), {})
    resumed_ev = after(ev, suspended)  # suspend back to false
    resumed = plan(resumed_ev, [job(Step.PREDICT, suspend=True)], [])
    assert resumed.phase == Phase.RUNNING
    assert resumed.suspend_jobs is False
    assert condition(resumed, ConditionType.SUSPENDED) == ("False", "Resumed")


def test_resume_waits_in_the_queue_when_quota_is_taken() -> None:
    ev = make_evaluation(status={"phase": "Suspended"})
    p = plan(ev, [job(Step.PREDICT, suspend=True)], [], queue=QueueVerdict(False, 1, "8 of 8 GPUs in use"))
    assert p.phase == Phase.QUEUED
    assert p.suspend_jobs is True
    assert p.status.queue_position == 1


def test_queued_until_admitted() -> None:
    ev = make_evaluation()
    queued = plan(ev, queue=QueueVerdict(False, 2, "pool a100: nvidia.com/gpu 8 of 8 in use"))
    assert queued.phase == Phase.QUEUED
    assert queued.create_jobs == ()
    assert queued.status.queue_position == 2
    assert condition(queued, ConditionType.QUEUED) == ("True", "WaitingForQuota")
    started = plan(after(ev, queued))
    assert started.phase == Phase.RUNNING
    assert started.create_jobs == (Step.PREDICT,)
    assert started.status.queue_position is None
    assert condition(started, ConditionType.QUEUED) == ("False", "Admitted")


BROKE = "budget team has 5.00 USD of 50.00 USD remaining, 0.00 USD committed; it may cost 60.00 USD"


def test_a_budget_without_room_queues_a_new_evaluation_with_reason_budget_exhausted() -> None:
    ev = make_evaluation()
    queued = plan(ev, queue=QueueVerdict(False, budget=BROKE))
    assert queued.phase == Phase.QUEUED
    assert queued.create_jobs == ()
    assert queued.status.queue_position is None
    assert condition(queued, ConditionType.QUEUED) == ("True", "BudgetExhausted")
    assert queued.status.message == f"waiting for budget in pool a100: {BROKE}"
    assert plan(after(ev, queued)).phase == Phase.RUNNING  # the budget has room again


def test_a_spent_hold_and_drain_budget_suspends_running_work_and_money_resumes_it() -> None:
    ev = make_evaluation()
    ev = after(ev, plan(ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running")]))
    drained = plan(
        ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running")], queue=QueueVerdict(False, budget=BROKE)
    )
    assert drained.phase == Phase.SUSPENDED
    assert (drained.suspend_jobs, drained.delete_jobs) == (True, False)  # never deleted
    assert condition(drained, ConditionType.SUSPENDED) == ("True", "BudgetExhausted")
    assert [n.reason for n in transition_notices(ev.status, drained.status)] == ["BudgetExhausted"]
    # Still no money: it stays suspended (not queued); then money: it resumes.
    ev = after(ev, drained)
    assert plan(ev, [job(Step.PREDICT, suspend=True)], [], queue=QueueVerdict(False, budget=BROKE)).phase == (
        Phase.SUSPENDED
    )
    resumed = plan(ev, [job(Step.PREDICT, suspend=True)], [])
    assert (resumed.phase, resumed.suspend_jobs) == (Phase.RUNNING, False)


def test_cancel_is_terminal_and_deletes_jobs() -> None:
    ev = make_evaluation(cancel=True)
    p = plan(ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running")])
    assert p.phase == Phase.CANCELLED
    assert p.delete_jobs
    assert condition(p, ConditionType.CANCELLED) == ("True", "Cancelled")


def test_terminal_phases_are_never_left() -> None:
    ev = make_evaluation(status={"phase": "Succeeded", "message": "done"}, suspend=True, cancel=True)
    p = plan(
        ev,
        [job(Step.PREDICT)],
        [pod(Step.PREDICT, 0, "Running")],
        acceptance=Acceptance(False, "UnknownPool", "x"),
    )
    assert p.phase == Phase.SUCCEEDED
    assert p.create_jobs == ()
    expired = plan(make_evaluation(status={"phase": "Expired"}), [job(Step.PREDICT)])
    assert expired.phase == Phase.EXPIRED and expired.delete_jobs


def test_rejection_without_webhook_sets_accepted_false() -> None:
    unknown = plan(
        make_evaluation(),
        acceptance=Acceptance(False, "UnknownPool", "pool a100 does not exist", retryable=True),
    )
    assert unknown.phase == Phase.PENDING
    assert condition(unknown, ConditionType.ACCEPTED) == ("False", "UnknownPool")
    assert unknown.create_jobs == ()
    out_of_range = plan(
        make_evaluation(), acceptance=Acceptance(False, "ResourcesOutOfRange", "nvidia.com/gpu 9 > max 8")
    )
    assert out_of_range.phase == Phase.FAILED
    assert condition(out_of_range, ConditionType.FAILED) == ("True", "ResourcesOutOfRange")
    assert out_of_range.create_jobs == ()


def test_jobs_of_another_incarnation_are_ignored() -> None:
    stale = job(Step.PREDICT, complete=True)
    stale["metadata"]["ownerReferences"][0]["uid"] = "old-uid"
    p = plan(make_evaluation(), [stale], [pod(Step.PREDICT, 0, "Succeeded")])
    assert p.create_jobs == (Step.PREDICT,)


def test_same_observations_give_the_same_status_and_no_write() -> None:
    ev = make_evaluation()
    jobs, pods = [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running", started=5)]
    first = plan(ev, jobs, pods, now=10)
    written = after(ev, first)
    again = plan(written, jobs, pods, now=500)  # later, same observations
    assert again.status == first.status
    assert status_changes(first.status.to_api(), again.status) is None


def test_condition_transition_time_is_kept_when_unchanged() -> None:
    ev = make_evaluation()
    first = plan(ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running")], now=10)
    second = plan(
        after(ev, first),
        [job(Step.PREDICT)],
        [pod(Step.PREDICT, 0, "Running"), pod(Step.PREDICT, 1, "Running")],
        now=20,
    )
    c1 = find_condition(first.status.conditions, "Running")
    c2 = find_condition(second.status.conditions, "Running")
    assert c1 is not None and c2 is not None
    assert c2.last_transition_time == c1.last_transition_time == T0 + timedelta(seconds=10)


def test_finished_tasks_survive_their_pods() -> None:
    jobs = [job(Step.PREDICT, complete=True), job(Step.EVALUATE)]
    ev = make_evaluation()
    first = plan(ev, jobs, [pod(Step.PREDICT, i, "Succeeded") for i in range(2)])
    # The predict Job and pods are gone (retention), the evaluate task runs.
    second = plan(after(ev, first), [job(Step.EVALUATE)], [pod(Step.EVALUATE, 0, "Running", started=30)])
    assert [t.phase for t in second.status.tasks] == [
        TaskPhase.SUCCEEDED,
        TaskPhase.SUCCEEDED,
        TaskPhase.RUNNING,
    ]
    assert second.create_jobs == ()


def test_status_changes_is_a_minimal_merge_patch() -> None:
    desired = EvaluationStatus(phase=Phase.RUNNING, message="x")
    assert status_changes({"phase": "Running", "message": "x"}, desired) is None
    assert status_changes({"phase": "Queued", "message": "x", "queuePosition": 1}, desired) == {
        "phase": "Running",
        "queuePosition": None,
    }


def test_progress_only_patches_may_wait_but_phase_and_lasting_conditions_may_not() -> None:
    def condition(type_: str, status: str, reason: str) -> dict[str, str]:
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }

    accepted = condition("Accepted", "True", "Accepted")
    idle = condition("Running", "False", "TasksNotRunning")
    stored = {"phase": "Running", "conditions": [accepted, idle]}
    running_now = [
        accepted,
        condition("Running", "True", "TasksRunning"),
        condition("Scheduled", "True", "PodsScheduled"),
    ]
    assert is_progress_only(stored, {"tasks": [], "taskCounts": {}, "message": "1/3", "startTime": "t"})
    assert is_progress_only(stored, {"conditions": running_now, "cost": {}})
    assert not is_progress_only(stored, {"phase": "Succeeded", "message": "done"})
    assert not is_progress_only(stored, {"results": {"summary": {}}})
    suspended = [*running_now, condition("Suspended", "True", "Suspended")]
    assert not is_progress_only(stored, {"conditions": suspended})
    assert not is_progress_only(stored, {"conditions": [condition("Accepted", "False", "UnknownPool")]})
    # Pods waiting for GPUs in a busy pool flip Scheduled again and again: progress, paced like the rest.
    unschedulable = [accepted, idle, condition("Scheduled", "False", "Unschedulable")]
    assert is_progress_only(stored, {"conditions": unschedulable})


def test_notices_only_on_phase_changes() -> None:
    running = EvaluationStatus(phase=Phase.RUNNING, message="1/3")
    assert transition_notices(running, EvaluationStatus(phase=Phase.RUNNING, message="2/3")) == []
    (notice,) = transition_notices(
        running, EvaluationStatus(phase=Phase.FAILED, message="task predict/1 failed")
    )
    assert (notice.type, notice.message) == ("Warning", "task predict/1 failed")


def test_a_first_start_posts_no_event_but_a_start_after_waiting_does() -> None:
    running = EvaluationStatus(phase=Phase.RUNNING, message="0/3")
    assert transition_notices(EvaluationStatus(), running) == []
    assert transition_notices(EvaluationStatus(), EvaluationStatus(phase=Phase.SUSPENDED)) == []
    (rejected,) = transition_notices(EvaluationStatus(), EvaluationStatus(phase=Phase.FAILED, message="no"))
    assert rejected.type == "Warning"
    (resumed,) = transition_notices(EvaluationStatus(phase=Phase.SUSPENDED), running)
    assert resumed.reason == "Resumed"
    (started,) = transition_notices(EvaluationStatus(phase=Phase.QUEUED), running)
    assert started.reason == "Started"


def test_success_posts_no_event_and_the_other_endings_do() -> None:
    running = EvaluationStatus(phase=Phase.RUNNING, message="3/3")
    assert transition_notices(running, EvaluationStatus(phase=Phase.SUCCEEDED, message="accuracy 0.9")) == []
    endings = {
        phase: transition_notices(running, EvaluationStatus(phase=phase, message="why"))
        for phase in (Phase.FAILED, Phase.EXPIRED, Phase.CANCELLED)
    }
    assert {phase: [n.type for n in notices] for phase, notices in endings.items()} == {
        Phase.FAILED: ["Warning"],
        Phase.EXPIRED: ["Warning"],
        Phase.CANCELLED: ["Normal"],
    }


def test_no_job_is_rendered_without_the_pool() -> None:
    ev = make_evaluation(status={"phase": "Running"})
    pods = [pod(Step.PREDICT, i, "Succeeded") for i in range(2)]
    owned = owned_jobs([job(Step.PREDICT, complete=True)], "ev-uid")
    p = plan_evaluation(
        ev,
        None,
        Observation(jobs=owned, pods=pods_of(pods, owned)),
        ACCEPTED,
        ADMITTED,
        T0 + timedelta(seconds=60),
    )
    assert p.create_jobs == ()
    assert condition(p, ConditionType.ACCEPTED) == ("False", "UnknownPool")


def test_the_job_remembers_successes_whose_pods_were_never_seen() -> None:
    # e.g. the operator was down while the pods finished and were garbage-collected
    p = plan(make_evaluation(), [job(Step.PREDICT, completed_indexes="0-1")], [])
    assert [t.phase for t in p.status.tasks[:2]] == [TaskPhase.SUCCEEDED, TaskPhase.SUCCEEDED]
    assert p.create_jobs == (Step.EVALUATE,)
