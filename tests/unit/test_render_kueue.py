"""render.kueue: a Job of a pool in Kueue mode is created suspended, in the pool's LocalQueue, with the
priority class and partial admission asked for; the API refuses a Kueue pool that cannot work."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError
from test_render_jobs import POOL, evaluation

from assay.api import ResourcePool
from assay.contract import Step
from assay.render import RenderOptions, job_for


def kueue_pool(**admission: Any) -> ResourcePool:
    body = copy.deepcopy(POOL)
    del body["spec"]["quota"]  # Kueue's ClusterQueue holds the quota
    body["spec"]["admission"] = {"queue": "Kueue", "localQueueName": "team-a-gpus", **admission}
    return ResourcePool.model_validate(body)


def test_kueue_jobs_are_suspended_in_the_local_queue_and_the_pods_do_not_carry_the_label() -> None:
    job = job_for(evaluation(), kueue_pool(), Step.PREDICT, RenderOptions())
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-gpus"
    assert "kueue.x-k8s.io/priority-class" not in job["metadata"]["labels"]
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    assert "kueue.x-k8s.io/job-min-parallelism" not in job["metadata"].get("annotations", {})


def test_an_assay_pool_renders_no_kueue_label_and_runs_unsuspended() -> None:
    job = job_for(evaluation(), ResourcePool.model_validate(POOL), Step.PREDICT, RenderOptions())
    assert job["spec"]["suspend"] is False
    assert not any(k.startswith("kueue.x-k8s.io/") for k in job["metadata"]["labels"])


def test_priority_class_and_partial_admission_from_the_pool() -> None:
    pool = kueue_pool(workloadPriorityClassName="low", minParallelism=2)
    predict = job_for(evaluation(), pool, Step.PREDICT, RenderOptions())
    assert predict["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "low"
    assert predict["metadata"]["annotations"]["kueue.x-k8s.io/job-min-parallelism"] == "2"
    # The one-task evaluate Job cannot be admitted partially.
    evaluate = job_for(evaluation(), pool, Step.EVALUATE, RenderOptions())
    assert "kueue.x-k8s.io/job-min-parallelism" not in evaluate["metadata"].get("annotations", {})


def test_the_evaluations_own_kueue_labels_win_over_the_pools() -> None:
    ev = evaluation()
    ev.metadata.labels.update(
        {"kueue.x-k8s.io/priority-class": "urgent", "kueue.x-k8s.io/queue-name": "mine"}
    )
    job = job_for(ev, kueue_pool(workloadPriorityClassName="low"), Step.PREDICT, RenderOptions())
    assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "urgent"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "mine"


def test_a_local_queue_name_must_be_a_label_value() -> None:
    with pytest.raises(ValidationError, match=r"local_queue_name|localQueueName"):
        kueue_pool(localQueueName="Not_A_Name")
