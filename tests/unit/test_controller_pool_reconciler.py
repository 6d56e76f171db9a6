"""PoolReconciler: which events recount a pool, and a recount that writes the pool's status once."""

from __future__ import annotations

from typing import Any

import pytest
from controller_fakes import RecordingCluster, evaluation_index, index, raw_evaluation
from test_rollup_evaluation import POOL

from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.indexes import EvaluationKey
from assay.controller.pool_queue import PoolQueue
from assay.controller.pool_reconciler import PoolReconciler
from assay.rollup.pools import NodeInfo

NODE = NodeInfo(labels={"pool": "a100"}, allocatable={"nvidia.com/gpu": "8"})


def reconciler(
    cluster: RecordingCluster, *evaluations: dict[str, Any]
) -> tuple[PoolReconciler, list[str], list[EvaluationKey]]:
    pools: list[str] = []
    evaluation_requests: list[EvaluationKey] = []
    cache = EvaluationCache(evaluation_index(*evaluations))
    work = PoolReconciler(
        cluster.as_cluster(),
        cache,
        PoolQueue(cache, {}, None),
        pools=index(("a100", POOL)),
        nodes=index(("gpu-1", NODE)),
        request_pool=pools.append,
        request_evaluation=evaluation_requests.append,
    )
    return work, pools, evaluation_requests


def test_a_pool_event_recounts_only_when_its_generation_moves() -> None:
    work, pools, evaluations = reconciler(RecordingCluster(), raw_evaluation("waiting"))
    work.pool_changed("a100", 1)
    assert pools == ["a100"] and evaluations == [("ns", "waiting")]
    work.pool_changed("a100", 1)  # its own status write coming back
    assert pools == ["a100"] and evaluations == [("ns", "waiting")]
    work.pool_changed("a100", 2)
    assert pools == ["a100", "a100"]


def test_a_node_event_recounts_pools_only_when_the_node_changed() -> None:
    work, pools, _ = reconciler(RecordingCluster())
    work.node_changed("gpu-1", NODE)
    work.node_changed("gpu-1", NODE)  # a heartbeat: same labels and allocatable
    assert pools == ["a100"]
    work.node_changed("gpu-1", None)
    assert pools == ["a100", "a100"]


def test_a_namespace_relabelled_recounts_only_pools_that_select_by_label() -> None:
    work, pools, _ = reconciler(RecordingCluster())
    work.namespace_changed("team-a", {"tier": "gold"})
    assert pools == []  # the pool has no budget scoped by namespace labels


@pytest.mark.asyncio
async def test_a_recount_writes_the_status_once_and_nothing_when_nothing_changed() -> None:
    cluster = RecordingCluster()
    work, _, _ = reconciler(cluster, raw_evaluation("ev", status={"phase": "Queued"}))
    await work.reconcile("a100")
    assert cluster.verbs() == ["patch pool"]
    assert cluster.writes[0][2]["capacity"] == {"nvidia.com/gpu": "8"}
    await work.reconcile("a100")
    assert cluster.verbs() == ["patch pool"]


@pytest.mark.asyncio
async def test_a_deleted_pool_is_not_written() -> None:
    cluster = RecordingCluster()
    work, _, _ = reconciler(cluster)
    assert await work.reconcile("gone") is None
    assert cluster.writes == []
