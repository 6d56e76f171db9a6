"""rollup.workloads: Kueue's verdict read from a Workload, and each Job's Workload found."""

from __future__ import annotations

from test_rollup_evaluation import job
from test_rollup_kueue import ADMITTED, PENDING, PENDING_MESSAGE, PREEMPTED, workload

from assay.contract import Step
from assay.rollup import owned_jobs
from assay.rollup.workloads import WorkloadView, view_workload, workloads_by_step


def test_waiting_admitted_and_preempted_in_kueues_words() -> None:
    assert view_workload(workload("u", PENDING)) == WorkloadView(False, "Pending", PENDING_MESSAGE)
    admitted = view_workload(workload("u", ADMITTED))
    assert (admitted.admitted, admitted.cluster_queue) == (True, "gpus")
    preempted = view_workload(workload("u", PREEMPTED))
    assert (preempted.evicted, preempted.reason, preempted.message) == (True, "Preempted", PREEMPTED[3])


def test_a_job_without_its_workload_yet_waits_for_kueue() -> None:
    assert view_workload(None).reason == "WaitingForKueue"


def test_an_eviction_that_is_not_a_preemption_is_reported_as_evicted() -> None:
    view = view_workload(
        workload("u", ("Evicted", "True", "PodsReadyTimeout", "Exceeded the PodsReady timeout"))
    )
    assert (view.evicted, view.reason, view.message) == (True, "Evicted", "Exceeded the PodsReady timeout")


def test_the_newest_workload_of_a_job_counts_and_other_owners_are_ignored() -> None:
    jobs = owned_jobs([job(Step.PREDICT)], "ev-uid")
    old = workload("ev-predict-uid", PENDING)
    new = {
        **workload("ev-predict-uid", ADMITTED),
        "metadata": {**old["metadata"], "creationTimestamp": "2026-01-01T12:05:00Z"},
    }
    stranger = workload("another-uid", ADMITTED)
    assert workloads_by_step([old, new, stranger], jobs) == {Step.PREDICT: new}
