"""Which watch events ask for a reconcile: those that change what the rollup reads, and deletions."""

from __future__ import annotations

import copy
from typing import Any

from controller_fakes import evaluation_index, raw_evaluation

from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.indexes import job_essentials
from assay.controller.relevance import EventFilter, pod_on_its_way
from assay.render import RenderOptions, retention_of


def pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": "pod-1", "name": "ev-predict-0", "labels": {"assay.dev/step": "predict"}},
        "spec": {"nodeName": "gpu-1"},
        "status": {"phase": "Running", "startTime": "2026-01-01T12:00:00Z", **status},
    }


def job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"uid": "job-1", "name": "ev-predict"}, "spec": {"suspend": False}, "status": status}


def test_a_pod_event_that_changes_only_its_ip_or_readiness_asks_for_nothing() -> None:
    events = EventFilter()
    assert events.pod_changed(pod(), deleted=False)  # first sight
    ready = pod(podIP="10.0.0.7", conditions=[{"type": "Ready", "status": "True"}])
    assert not events.pod_changed(ready, deleted=False)
    finished = pod(phase="Succeeded", podIP="10.0.0.7")
    assert events.pod_changed(finished, deleted=False)
    assert events.pod_changed(finished, deleted=True)  # a deletion always counts, and is forgotten
    assert len(events) == 0


def test_a_job_event_of_its_pod_counters_asks_for_nothing_but_index_sets_and_conditions_do() -> None:
    events = EventFilter()
    assert events.job_changed(job(active=4), deleted=False)
    assert not events.job_changed(job(active=3, ready=3, terminating=1), deleted=False)
    assert events.job_changed(job(active=3, completedIndexes="0"), deleted=False)
    complete = job(completedIndexes="0-3", conditions=[{"type": "Complete", "status": "True"}])
    assert events.job_changed(complete, deleted=False)


def test_our_own_status_write_coming_back_is_an_echo_and_a_spec_change_is_not() -> None:
    raw = raw_evaluation(version="7")
    cache = EvaluationCache(evaluation_index(raw))
    cache.wrote("ev-uid", {"metadata": {"resourceVersion": "8"}, "status": {"phase": "Running"}})
    echo = copy.deepcopy(raw["metadata"]) | {"resourceVersion": "8"}
    assert cache.is_echo(echo)
    assert not cache.is_echo(echo | {"resourceVersion": "9"})  # e.g. the user suspended it since
    assert not cache.is_echo(raw["metadata"])


def test_a_job_given_its_retention_is_not_given_it_again() -> None:
    options = RenderOptions()
    finished = job(conditions=[{"type": "Complete", "status": "True"}])
    assert retention_of(job_essentials(finished), options) == {
        "ttlSecondsAfterFinished": options.job_retention_seconds
    }
    finished["spec"]["ttlSecondsAfterFinished"] = options.job_retention_seconds
    assert retention_of(job_essentials(finished), options) is None


def test_a_pod_on_its_way_to_running_changes_only_progress() -> None:
    created: dict[str, Any] = {"metadata": {"uid": "p"}, "status": {"phase": "Pending"}}
    scheduled = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}])
    creating = pod(
        phase="Pending",
        containerStatuses=[{"name": "task", "state": {"waiting": {"reason": "ContainerCreating"}}}],
    )
    assert pod_on_its_way(created) and pod_on_its_way(scheduled) and pod_on_its_way(creating)


def test_a_pod_that_runs_fails_to_start_or_cannot_be_placed_may_change_the_outcome() -> None:
    unschedulable = pod(
        phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    )
    no_image = pod(
        phase="Pending",
        containerStatuses=[{"name": "task", "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
    )
    evicted = pod(phase="Pending", reason="Evicted")
    deleting = pod(phase="Pending") | {"metadata": {"uid": "p", "deletionTimestamp": "2026-01-01T12:00:00Z"}}
    running = pod(containerStatuses=[{"name": "task", "state": {"running": {}}}])  # starts auto-release
    done = pod(phase="Succeeded")
    for body in (unschedulable, no_image, evicted, deleting, running, done):
        assert not pod_on_its_way(body), body
