"""controller.kueue's indices: a Workload is found from its Job, kept slim, and routed to its Evaluation."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf
from test_rollup_evaluation import job
from test_rollup_kueue import ADMITTED, PENDING, workload

from assay.contract import Step
from assay.controller.kueue import KueueView, evaluations_by_job, workloads_by_job
from assay.rollup import owned_jobs
from assay.rollup.workloads import view_workload


def full(raw: dict[str, Any]) -> dict[str, Any]:
    """A Workload as the apiserver sends it: Kueue's pod sets, managed fields and more."""
    return {
        **raw,
        "metadata": {
            **raw["metadata"],
            "namespace": "ns",
            "managedFields": [{"manager": "kueue"}],
            "ownerReferences": [{**raw["metadata"]["ownerReferences"][0], "name": "ev-predict"}],
        },
        "spec": {**raw["spec"], "podSets": [{"name": "main", "count": 2, "template": {"spec": {}}}]},
    }


def index(raw: dict[str, Any]) -> dict[Any, Any]:
    return asyncio.run(workloads_by_job(namespace="ns", body=cast(kopf.Body, full(raw))))


def test_a_workload_is_indexed_by_its_job_and_reads_the_same_slim() -> None:
    for conditions in ((PENDING,), (ADMITTED,)):
        raw = workload("ev-predict-uid", *conditions)
        slim = index(raw)[("ns", "ev-predict")]
        assert "podSets" not in slim["spec"] and "managedFields" not in slim["metadata"]
        assert view_workload(slim) == view_workload(full(raw))


def test_the_workloads_of_an_evaluation_come_from_its_jobs_and_route_back_to_it() -> None:
    raw = workload("ev-predict-uid", ADMITTED)
    workloads = cast(kopf.Index[Any, Any], {key: [value] for key, value in index(raw).items()})
    owners = asyncio.run(
        evaluations_by_job(
            namespace="ns",
            name="ev-predict",
            labels=cast(kopf.Labels, {"assay.dev/evaluation": "ev"}),
            annotations=cast(kopf.Annotations, {}),
        )
    )
    view = KueueView(True, workloads, cast(kopf.Index[Any, Any], {k: [v] for k, v in owners.items()}))
    jobs = owned_jobs([job(Step.PREDICT)], "ev-uid")
    assert view_workload(view.workloads_of("ns", jobs)[Step.PREDICT]).admitted
    assert view.evaluations_of("ns", full(raw)) == [("ns", "ev")]
    assert view.evaluations_of("other", full(raw)) == []
