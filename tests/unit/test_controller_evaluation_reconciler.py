"""EvaluationReconciler and StatusWriter over a recording Cluster: what one reconcile writes, and what a
second one, before the index has caught up, does not write again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from controller_fakes import RecordingCluster, evaluation_index, index, raw_evaluation
from test_rollup_evaluation import POOL, T0, job, pod

from assay.contract import Step, result_message
from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.evaluation_reconciler import EvaluationReconciler
from assay.controller.indexes import StoredPod
from assay.controller.pacing import ProgressPacer
from assay.controller.pool_queue import PoolQueue
from assay.controller.status_writer import StatusWriter
from assay.render import RenderOptions
from assay.rollup.notices import Notice

KEY = ("ns", "ev")


def reconciler(
    raw: dict[str, Any],
    cluster: RecordingCluster,
    moved: list[str],
    events: list[Notice] | None = None,
    *,
    jobs: tuple[dict[str, Any], ...] = (),
    pods: tuple[dict[str, Any], ...] = (),
    pools_indexed: bool = True,
) -> EvaluationReconciler:
    cache = EvaluationCache(evaluation_index(raw))
    queue = PoolQueue(cache, index(*((KEY, j) for j in jobs)), None)
    posted = events if events is not None else []
    writer = StatusWriter(
        cluster.as_cluster(),
        cache,
        ProgressPacer(0.0, 100.0),
        moved.append,
        lambda _body, n: posted.append(n),
    )
    return EvaluationReconciler(
        cluster.as_cluster(),
        cache,
        queue,
        writer,
        RenderOptions(),
        pools=index(("a100", POOL)) if pools_indexed else index(),
        pods=index(*((KEY, StoredPod.of(p)) for p in pods)),
        debug_password_length=16,
    )


@pytest.mark.asyncio
async def test_a_new_evaluation_gets_its_first_job_and_one_status_write() -> None:
    cluster, moved = RecordingCluster(), []
    work = reconciler(raw_evaluation(), cluster, moved)
    await work.reconcile(KEY)
    assert cluster.writes[0] == ("create", "Job", "ev-predict")
    patches = [w for w in cluster.writes if w[0] == "patch status"]
    assert len(patches) == 1 and patches[0][2]["phase"] == "Running"
    assert moved == ["a100"]  # a phase change moves the pool's count
    assert ("ns", "ev") in work.queue.admitted_in("a100")


@pytest.mark.asyncio
async def test_a_pool_the_index_does_not_show_yet_is_read_from_the_api_before_refusing() -> None:
    """A pool created a moment before the Evaluation may not be indexed yet: not UnknownPool, but read."""
    cluster, moved = RecordingCluster(), []
    cluster.pools["a100"] = POOL.model_dump(mode="json", by_alias=True, exclude_none=True)
    work = reconciler(raw_evaluation(), cluster, moved, pools_indexed=False)
    await work.reconcile(KEY)
    (status,) = [w for w in cluster.writes if w[0] == "patch status"]
    assert status[2]["phase"] == "Running", status
    assert cluster.writes[0] == ("create", "Job", "ev-predict")


@pytest.mark.asyncio
async def test_a_pool_missing_from_the_index_and_the_api_is_unknown() -> None:
    cluster, moved = RecordingCluster(), []
    work = reconciler(raw_evaluation(), cluster, moved, pools_indexed=False)
    await work.reconcile(KEY)
    (status,) = [w for w in cluster.writes if w[0] == "patch status"]
    accepted = [c for c in status[2]["conditions"] if c["type"] == "Accepted"]
    assert [(c["status"], c["reason"]) for c in accepted] == [("False", "UnknownPool")]
    assert not [w for w in cluster.writes if w[0] == "create"]


@pytest.mark.asyncio
async def test_a_second_reconcile_before_the_job_shows_creates_and_writes_nothing() -> None:
    cluster, moved = RecordingCluster(), []
    work = reconciler(raw_evaluation(), cluster, moved)
    await work.reconcile(KEY)
    before = list(cluster.writes)
    await work.reconcile(KEY)  # our own status write came back; the Job's watch event has not
    assert cluster.writes == before


@pytest.mark.asyncio
async def test_a_refused_create_fails_the_evaluation_in_the_same_reconcile() -> None:
    cluster, moved, events = RecordingCluster(refuse={"Job"}), [], []
    work = reconciler(raw_evaluation(), cluster, moved, events)
    await work.reconcile(KEY)
    assert [w for w in cluster.writes if w[0] == "create"] == []
    (patch,) = [w[2] for w in cluster.writes if w[0] == "patch status"]
    assert patch["phase"] == "Failed"
    assert "forbidden: by a policy" in str(patch)
    assert ("ns", "ev") not in work.queue.admitted_in("a100")
    assert [(n.type, n.reason) for n in events] == [("Warning", "CreateRefused")]


@pytest.mark.asyncio
async def test_an_evaluation_being_deleted_is_left_to_the_garbage_collector() -> None:
    cluster, moved = RecordingCluster(), []
    raw = raw_evaluation()
    raw["metadata"]["deletionTimestamp"] = "2026-01-01T12:05:00Z"
    assert await reconciler(raw, cluster, moved).reconcile(KEY) is None
    assert cluster.writes == [] and moved == []


@pytest.mark.asyncio
async def test_a_success_written_is_followed_at_once_by_its_jobs_retention() -> None:
    cluster, moved = RecordingCluster(), []
    raw = raw_evaluation(tasks=1, status={"phase": "Running"})
    now = (datetime.now(UTC) - T0).total_seconds()  # the sample pods' times count from T0
    message = result_message({"accuracy": 0.9})
    done = pod(Step.ALL, 0, "Succeeded", exit_code=0, started=now - 20, finished=now - 5, message=message)
    work = reconciler(raw, cluster, moved, jobs=(job(Step.ALL, complete=True, at=now - 5),), pods=(done,))
    await work.reconcile(KEY)
    (status, retention) = cluster.writes
    assert status[0] == "patch status" and status[2]["phase"] == "Succeeded"
    ttl = {"ttlSecondsAfterFinished": RenderOptions().job_retention_seconds}
    assert retention == ("patch job", "ev-evaluate", ttl)
    await work.reconcile(KEY)  # a pod event, say, before the index shows the retention
    assert len(cluster.writes) == 2
