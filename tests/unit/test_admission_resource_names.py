"""Resource names a container cannot request are refused at admission (the Job would be refused for ever)."""

from __future__ import annotations

import pytest

from assay.admission import check_new_evaluation, container_may_request
from assay.api import EvaluationSpec, ResourcePool
from assay.api.conditions import Reason

pytestmark = pytest.mark.faults

POOL = ResourcePool.model_validate(
    {"apiVersion": "assay.dev/v1alpha1", "kind": "ResourcePool", "metadata": {"name": "p"}, "spec": {}}
)


def spec(**resources: str) -> EvaluationSpec:
    return EvaluationSpec.model_validate(
        {
            "pool": "p",
            "model": {"name": "m", "uri": "file:///m"},
            "handler": "m:E",
            "dataset": {"name": "d", "uri": "file:///d"},
            "resources": resources,
        }
    )


@pytest.mark.parametrize(
    "name", ["cpu", "memory", "ephemeral-storage", "hugepages-2Mi", "nvidia.com/gpu", "example.com/fpga_x"]
)
def test_requestable(name: str) -> None:
    assert container_may_request(name)


@pytest.mark.parametrize(
    "name",
    [
        "bogus",
        "pods",
        "kubernetes.io/gpu",
        "node.kubernetes.io/x",
        "requests.nvidia.com/gpu",
        "a/",
        "/b",
        "A.com/x",
    ],
)
def test_not_requestable(name: str) -> None:
    assert not container_may_request(name)


def test_an_unknown_resource_name_is_refused_with_what_to_use() -> None:
    (problem,) = check_new_evaluation(spec(bogus="1"), namespace="team", pool=POOL)
    assert problem.reason == Reason.RESOURCES_OUT_OF_RANGE
    assert problem.field == "spec.resources[bogus]"
    assert "nvidia.com/gpu" in problem.message


def test_valid_names_pass() -> None:
    assert check_new_evaluation(spec(cpu="1", **{"nvidia.com/gpu": "1"}), namespace="team", pool=POOL) == []
