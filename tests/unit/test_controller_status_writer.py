"""StatusWriter: one patch per change, progress-only changes paced, our write remembered, the pool told."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from controller_fakes import RecordingCluster, evaluation_index, raw_evaluation

from assay.api import Evaluation, EvaluationStatus
from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.pacing import ProgressPacer
from assay.controller.status_writer import StatusWriter
from assay.rollup.notices import Notice

KEY = ("ns", "ev")
RUNNING = {"phase": "Running", "message": "0 of 2 tasks done"}


def writer(raw: dict[str, object], pacer: ProgressPacer) -> tuple[StatusWriter, RecordingCluster, list[str]]:
    cluster, moved, posted = RecordingCluster(), [], []
    cache = EvaluationCache(evaluation_index(raw))

    def post(_body: object, notice: Notice) -> None:
        posted.append(notice.reason)

    return StatusWriter(cluster.as_cluster(), cache, pacer, moved.append, post), cluster, moved


@pytest.mark.asyncio
async def test_an_unchanged_status_is_not_written() -> None:
    raw = raw_evaluation(status=RUNNING)
    work, cluster, moved = writer(raw, ProgressPacer(0, 0))
    evaluation = Evaluation.model_validate(raw)
    assert await work.write(KEY, raw, evaluation, None, evaluation.status) is None
    assert cluster.writes == [] and moved == []


@pytest.mark.asyncio
async def test_a_progress_only_change_waits_for_its_slot_and_a_phase_change_does_not() -> None:
    raw = raw_evaluation(status=RUNNING)
    work, cluster, moved = writer(raw, ProgressPacer(interval=60, rate=0))
    evaluation = Evaluation.model_validate(raw)
    work.progress.wrote("ev-uid")  # written a moment ago
    progressed = EvaluationStatus.model_validate({**RUNNING, "message": "1 of 2 tasks done"})
    due = await work.write(KEY, raw, evaluation, None, progressed)
    assert due is not None and due > datetime.now(UTC)
    assert cluster.writes == []
    succeeded = EvaluationStatus.model_validate({"phase": "Succeeded", "message": "done"})
    assert await work.write(KEY, raw, evaluation, None, succeeded) is None
    assert [w[0] for w in cluster.writes] == ["patch status"]
    assert moved == ["a100"]
    assert work.cache.stored_status(raw)["phase"] == "Succeeded"  # until the index shows the write
