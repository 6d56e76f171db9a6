"""rollup.rules.kueue and rollup.workloads: a pool in Kueue mode follows Kueue's Workloads, never Assay's
quota queue, and Assay never unsuspends a Job there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from test_rollup_evaluation import ACCEPTED, T0, job, make_evaluation, pod

from assay.api import ConditionType, Evaluation, Phase, ResourcePool, find_condition
from assay.contract import Step
from assay.rollup import Observation, Plan, QueueVerdict, owned_jobs, plan_evaluation, pods_of
from assay.rollup.workloads import workloads_by_step

KUEUE_POOL = ResourcePool.model_validate(
    {
        "metadata": {"name": "a100"},
        "spec": {
            "resources": [{"name": "nvidia.com/gpu", "default": "1"}],
            "pricing": {"currency": "USD", "perHour": {"nvidia.com/gpu": "3.60"}},
            "admission": {"queue": "Kueue", "localQueueName": "team-a"},
        },
    }
)
# Assay's own queue says no: a Kueue pool must not care.
QUOTA_FULL = QueueVerdict(admitted=False, position=2, message="8/8 nvidia.com/gpu in use")
PENDING_MESSAGE = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
    "a100, 8 more needed"
)


def workload(job_uid: str, *conditions: tuple[str, str, str, str]) -> dict[str, Any]:
    """A Workload owned by the Job ``job_uid`` with (type, status, reason, message) conditions."""
    admitted = any(c[0] == "Admitted" and c[1] == "True" for c in conditions)
    return {
        "metadata": {
            "name": f"job-{job_uid}",
            "creationTimestamp": "2026-01-01T12:00:00Z",
            "ownerReferences": [{"kind": "Job", "uid": job_uid, "name": job_uid}],
        },
        "spec": {"queueName": "team-a"},
        "status": {
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": "2026-01-01T12:00:00Z",
                }
                for t, s, r, m in conditions
            ],
            **({"admission": {"clusterQueue": "gpus"}} if admitted else {}),
        },
    }


PENDING = ("QuotaReserved", "False", "Pending", PENDING_MESSAGE)
ADMITTED = ("Admitted", "True", "Admitted", "The workload is admitted")
PREEMPTED = (
    "Evicted",
    "True",
    "Preempted",
    "Preempted to accommodate a workload (UID: x) due to prioritization",
)


def kueue_plan(
    ev: Evaluation,
    jobs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    workloads: list[dict[str, Any]] = (),  # type: ignore[assignment]
    pods: list[dict[str, Any]] = (),  # type: ignore[assignment]
    *,
    installed: bool = True,
) -> Plan:
    owned = owned_jobs(list(jobs), "ev-uid")
    observation = Observation(
        jobs=owned,
        pods=pods_of(list(pods), owned),
        workloads=workloads_by_step(list(workloads), owned),
        kueue_installed=installed,
    )
    return plan_evaluation(ev, KUEUE_POOL, observation, ACCEPTED, QUOTA_FULL, T0 + timedelta(seconds=60))


def recorded(p: Plan, type_: ConditionType) -> tuple[str, str, str] | None:
    c = find_condition(p.status.conditions, type_.value)
    return (c.status.value, c.reason, c.message) if c else None


def test_a_new_evaluation_submits_its_predict_job_to_kueue_and_is_queued() -> None:
    p = kueue_plan(make_evaluation())
    assert p.create_jobs == (Step.PREDICT,)
    assert p.phase == Phase.QUEUED
    assert p.status.message == "waiting for Kueue: submitted to Kueue's LocalQueue team-a"
    assert p.status.queue_position is None  # Assay's queue position means nothing here
    assert (p.suspend_jobs, p.workloads_active) == (None, True)


def test_waiting_for_quota_shows_kueues_reason_and_message() -> None:
    predict = job(Step.PREDICT, suspend=True)
    p = kueue_plan(make_evaluation({"phase": "Queued"}), [predict], [workload("ev-predict-uid", PENDING)])
    assert p.phase == Phase.QUEUED
    assert recorded(p, ConditionType.QUEUED) == (
        "True",
        "Pending",
        f"Kueue (LocalQueue team-a): {PENDING_MESSAGE}",
    )
    assert p.create_jobs == ()
    assert p.suspend_jobs is None  # never unsuspended by Assay


def test_a_job_kueue_has_not_seen_yet_waits_for_kueue() -> None:
    p = kueue_plan(make_evaluation({"phase": "Queued"}), [job(Step.PREDICT, suspend=True)])
    assert p.phase == Phase.QUEUED
    assert recorded(p, ConditionType.QUEUED)[:2] == ("True", "WaitingForKueue")  # type: ignore[index]


def test_admitted_runs_and_assay_never_touches_the_jobs_suspend() -> None:
    predict = job(Step.PREDICT)
    p = kueue_plan(
        make_evaluation({"phase": "Queued"}),
        [predict],
        [workload("ev-predict-uid", ("QuotaReserved", "True", "QuotaReserved", ""), ADMITTED)],
        [pod(Step.PREDICT, 0, "Running"), pod(Step.PREDICT, 1, "Running")],
    )
    assert p.phase == Phase.RUNNING
    assert recorded(p, ConditionType.QUEUED) is None  # never was Queued by a condition: stays absent
    assert (p.suspend_jobs, p.workloads_active) == (None, True)


def test_admission_clears_queued_naming_the_cluster_queue() -> None:
    waiting = kueue_plan(
        make_evaluation({"phase": "Queued"}),
        [job(Step.PREDICT, suspend=True)],
        [workload("ev-predict-uid", PENDING)],
    )
    ev = make_evaluation(waiting.status.model_dump(by_alias=True, mode="json", exclude_none=True))
    p = kueue_plan(ev, [job(Step.PREDICT)], [workload("ev-predict-uid", ADMITTED)])
    assert p.phase == Phase.RUNNING
    assert recorded(p, ConditionType.QUEUED) == (
        "False",
        "AdmittedByKueue",
        "admitted by Kueue to ClusterQueue gpus",
    )


def test_preempted_is_suspended_with_reason_preempted_then_running_again() -> None:
    running = make_evaluation({"phase": "Running"})
    predict = job(Step.PREDICT, suspend=True, completed_indexes="0")
    p = kueue_plan(
        running,
        [predict],
        [workload("ev-predict-uid", PREEMPTED, ("QuotaReserved", "False", "Preempted", "evicted"))],
        [pod(Step.PREDICT, 0, "Succeeded", finished=30)],
    )
    assert p.phase == Phase.SUSPENDED
    assert recorded(p, ConditionType.SUSPENDED) == ("True", "Preempted", PREEMPTED[3])
    assert p.status.message.startswith("preempted by Kueue: Preempted to accommodate")
    assert p.status.task_counts is not None and p.status.task_counts.succeeded == 1  # progress kept
    assert (p.suspend_jobs, p.workloads_active) == (None, True)  # still queued in Kueue, to come back

    readmitted = kueue_plan(
        make_evaluation(p.status.model_dump(by_alias=True, mode="json", exclude_none=True)),
        [job(Step.PREDICT, completed_indexes="0")],
        [workload("ev-predict-uid", ADMITTED)],
        [pod(Step.PREDICT, 0, "Succeeded", finished=30), pod(Step.PREDICT, 1, "Running", attempt=1)],
    )
    assert readmitted.phase == Phase.RUNNING
    assert recorded(readmitted, ConditionType.SUSPENDED)[:2] == ("False", "Resumed")  # type: ignore[index]
    assert readmitted.status.task_counts is not None and readmitted.status.task_counts.succeeded == 1


def test_spec_suspend_deactivates_the_workloads_instead_of_suspending_jobs() -> None:
    p = kueue_plan(
        make_evaluation({"phase": "Running"}, suspend=True),
        [job(Step.PREDICT)],
        [workload("ev-predict-uid", ADMITTED)],
    )
    assert p.phase == Phase.SUSPENDED
    assert (p.suspend_jobs, p.workloads_active) == (None, False)


def test_the_evaluate_job_is_submitted_once_predict_is_complete() -> None:
    predict = job(Step.PREDICT, complete=True, completed_indexes="0-1")
    p = kueue_plan(make_evaluation({"phase": "Running"}), [predict], [workload("ev-predict-uid", ADMITTED)])
    assert p.create_jobs == (Step.EVALUATE,)
    assert p.phase == Phase.QUEUED


def test_without_kueue_installed_it_waits_with_a_clear_message_and_creates_nothing() -> None:
    p = kueue_plan(make_evaluation(), installed=False)
    assert p.phase == Phase.QUEUED
    assert p.create_jobs == ()
    reason, message = recorded(p, ConditionType.QUEUED)[1:]  # type: ignore[index]
    assert reason == "KueueNotInstalled"
    assert "install Kueue, or set the pool's spec.admission.queue to Assay" in message


@pytest.mark.parametrize("phase", ["Failed", "Succeeded", "Cancelled"])
def test_terminal_plans_leave_the_workloads_alone(phase: str) -> None:
    p = kueue_plan(make_evaluation({"phase": phase}), [job(Step.PREDICT, complete=True)])
    assert (p.suspend_jobs, p.workloads_active) == (None, None)


def test_a_pool_budget_still_holds_a_new_evaluation_before_kueue_sees_it() -> None:
    no_money = QueueVerdict(admitted=True, budget="budget team: 1.00 USD left, needs 3.60 USD")
    owned = owned_jobs([], "ev-uid")
    observation = Observation(jobs=owned, kueue_installed=True)
    p = plan_evaluation(make_evaluation(), KUEUE_POOL, observation, ACCEPTED, no_money, T0)
    assert p.phase == Phase.QUEUED
    assert p.create_jobs == ()
    assert recorded(p, ConditionType.QUEUED)[:2] == ("True", "BudgetExhausted")  # type: ignore[index]
