"""The indices keep only what the controller reads: the rollup sees the same from a slim pod as a full one."""

from __future__ import annotations

import copy
import sys
import tracemalloc
from pathlib import Path
from typing import Any, cast

import kopf
import pytest

from assay.contract import Step
from assay.controller.indexes import StoredPod, evaluations_by_key, pods_by_evaluation, slim_pod
from assay.rollup import pod_state

sys.path.insert(0, str(Path(__file__).parent))
from test_rollup_evaluation import pod


def full(raw: dict[str, Any]) -> dict[str, Any]:
    """A pod as the apiserver sends it: more status than the rollup reads."""
    raw = copy.deepcopy(raw)
    raw["metadata"]["namespace"] = "ns"
    raw["metadata"]["labels"]["assay.dev/evaluation"] = "ev"
    raw["metadata"]["managedFields"] = [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]
    status = raw["status"]
    status["hostIP"], status["podIP"], status["qosClass"] = "10.0.0.1", "10.1.0.7", "Guaranteed"
    status.setdefault("conditions", []).append({"type": "Ready", "status": "False"})
    for container in status.get("containerStatuses", []):
        container.update(image="runner:1", imageID="sha256:abc", restartCount=0, ready=False)
    return raw


@pytest.mark.parametrize(
    "raw",
    [
        pod(Step.PREDICT, 0, "Running"),
        pod(Step.PREDICT, 1, "Succeeded", message='{"records": 3}'),
        pod(Step.PREDICT, 2, "Failed", exit_code=3, message="boom"),
        pod(Step.PREDICT, 3, "Pending", unschedulable=True, node=None),
        pod(Step.EVALUATE, 0, "Pending", waiting="ImagePullBackOff"),
    ],
    ids=["running", "succeeded", "failed", "unschedulable", "image-pull"],
)
async def test_a_slim_pod_rolls_up_like_the_full_one(raw: dict[str, Any]) -> None:
    body = full(raw)
    labels = body["metadata"]["labels"]
    indexed = await pods_by_evaluation(
        namespace="ns", body=kopf.Body(cast(Any, body)), labels=labels, annotations={}
    )
    (stored,) = indexed.values()
    slim = stored.raw()
    assert pod_state(slim) == pod_state(body)
    assert "managedFields" not in slim["metadata"] and "hostIP" not in slim["status"]


async def test_an_evaluation_is_kept_without_managed_fields_or_the_last_applied_copy() -> None:
    body = {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "Evaluation",
        "metadata": {
            "name": "ev",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "7",
            "generation": 2,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"pool": "p"},
        "status": {"phase": "Running"},
    }
    stored = (await evaluations_by_key(namespace="ns", name="ev", body=kopf.Body(cast(Any, body))))[
        ("ns", "ev")
    ]
    kept = stored.raw()
    assert kept["metadata"] == {
        "name": "ev",
        "namespace": "ns",
        "uid": "u",
        "resourceVersion": "7",
        "generation": 2,
    }
    assert (kept["apiVersion"], kept["kind"], kept["spec"], kept["status"]) == (
        "assay.dev/v1alpha1",
        "Evaluation",
        {"pool": "p"},
        {"phase": "Running"},
    )
    # What scans over a pool read, without decoding it.
    assert (stored.uid, stored.resource_version, stored.pool, stored.phase) == ("u", "7", "p", "Running")
    assert (stored.suspend, stored.cancel) == (False, False)


def test_a_stored_pod_takes_a_fraction_of_its_dictionaries() -> None:
    body = full(pod(Step.PREDICT, 1, "Succeeded", message='{"records": 3}'))
    slim = slim_pod(body)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        dictionaries = [copy.deepcopy(slim) for _ in range(100)]
        middle = tracemalloc.get_traced_memory()[0]
        stored = [StoredPod.of(body) for _ in range(100)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert stored[0].raw() == slim and len(dictionaries) == 100
    assert (after - middle) < (middle - before) / 2
    assert (after - middle) / 100 < 1024  # not orjson's 4 KiB buffer
