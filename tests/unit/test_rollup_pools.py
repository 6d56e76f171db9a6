"""A pool's status: capacity from its matching nodes, use from the Evaluations holding its quota (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from assay.api import AdmissionQueue, EvaluationSpec, PoolAdmission, ResourcePool, find_condition
from assay.rollup.pools import NodeInfo, pool_status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A100 = {"gpu.example.com/type": "a100"}
POOL = ResourcePool.model_validate(
    {
        "metadata": {"name": "a100", "generation": 3},
        "spec": {
            "nodeSelector": A100,
            "resources": [{"name": "nvidia.com/gpu", "default": "1"}, {"name": "memory", "default": "8Gi"}],
            "quota": {"nvidia.com/gpu": "16"},
        },
    }
)
NODES = [
    NodeInfo(labels=A100, allocatable={"nvidia.com/gpu": "8", "memory": "1000Gi"}),
    NodeInfo(labels=A100, allocatable={"nvidia.com/gpu": "8", "memory": "1000Gi"}),
    NodeInfo(labels=A100, allocatable={"nvidia.com/gpu": "8"}, schedulable=False),  # cordoned
    NodeInfo(labels={"gpu.example.com/type": "t4"}, allocatable={"nvidia.com/gpu": "4"}),
]


def spec(tasks: int, **resources: str) -> EvaluationSpec:
    return EvaluationSpec.model_validate(
        {
            "pool": "a100",
            "model": {"name": "m", "uri": "file:///m"},
            "handler": "h:H",
            "dataset": {"name": "d", "uri": "file:///d"},
            "tasks": tasks,
            "resources": resources or None,
        }
    )


def test_capacity_from_matching_schedulable_nodes_and_use_from_holders() -> None:
    status = pool_status(POOL, NODES, [spec(2, **{"nvidia.com/gpu": "2"}), spec(3)], queued=1, now=T0)
    assert status.nodes == 2
    assert status.capacity == {"nvidia.com/gpu": "16", "memory": "2000Gi"}
    assert status.in_use == {"nvidia.com/gpu": "7", "memory": "40Gi"}  # 2x2 + 3x1 GPUs, 5 x 8Gi
    assert (status.running_evaluations, status.queued_evaluations) == (2, 1)
    assert status.observed_generation == 3
    quota = find_condition(status.conditions, "QuotaExceeded")
    assert quota is not None and quota.is_true and quota.reason == "EvaluationsWaiting"


def test_no_matching_nodes_is_not_ready_and_transition_times_are_kept() -> None:
    lonely = POOL.model_copy(update={"spec": POOL.spec.model_copy(update={"node_selector": {"x": "y"}})})
    first = pool_status(lonely, NODES, [], queued=0, now=T0)
    ready = find_condition(first.conditions, "Ready")
    assert ready is not None and not ready.is_true and ready.reason == "NoMatchingNodes"
    again = pool_status(lonely.model_copy(update={"status": first}), NODES, [], 0, T0 + timedelta(minutes=5))
    assert again == first


def test_gpus_on_the_nodes_that_the_pool_does_not_list_are_a_warning() -> None:
    cpu_only = POOL.model_copy(
        update={"spec": POOL.spec.model_copy(update={"resources": POOL.spec.resources[1:], "quota": {}})}
    )
    unbounded = find_condition(pool_status(cpu_only, NODES, [], 0, T0).conditions, "GPUsUnbounded")
    assert unbounded is not None and unbounded.is_true and unbounded.reason == "GPUsNotListed"
    assert unbounded.message == (
        "the pool's nodes offer nvidia.com/gpu (16) but spec.resources does not list it: a task may request "
        "any number, counted by no quota; list it with a max (and in spec.quota), "
        "or set spec.unlistedResources: Refuse"
    )
    listed = find_condition(pool_status(POOL, NODES, [], 0, T0).conditions, "GPUsUnbounded")
    assert listed is not None and not listed.is_true and listed.reason == "GPUsListed"


def test_a_pool_that_refuses_unlisted_resources_has_no_unbounded_gpus() -> None:
    refusing = POOL.model_copy(
        update={
            "spec": POOL.spec.model_copy(
                update={"resources": POOL.spec.resources[1:], "unlisted_resources": "Refuse"}
            )
        }
    )
    unbounded = find_condition(pool_status(refusing, NODES, [], 0, T0).conditions, "GPUsUnbounded")
    assert unbounded is not None and not unbounded.is_true


def test_a_kueue_pool_is_not_ready_without_kueue_and_ready_with_it() -> None:
    kueue_pool = POOL.model_copy(
        update={
            "spec": POOL.spec.model_copy(
                update={
                    "quota": {},
                    "admission": PoolAdmission(queue=AdmissionQueue.KUEUE, local_queue_name="team-a"),
                }
            )
        }
    )
    without = find_condition(pool_status(kueue_pool, NODES, [], 0, T0).conditions, "Ready")
    assert without is not None and (without.status.value, without.reason) == ("False", "KueueNotInstalled")
    assert "Kueue is not installed" in without.message
    with_kueue = pool_status(kueue_pool, NODES, [], 0, T0, kueue_installed=True)
    ready = find_condition(with_kueue.conditions, "Ready")
    assert ready is not None and (ready.status.value, ready.reason) == ("True", "NodesFound")
