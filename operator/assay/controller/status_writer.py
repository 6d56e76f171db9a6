"""An Evaluation's status write: one merge patch per change (progress-only changes paced), the Events of its
phase changes, and the metrics it exports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from assay.api import ConditionType, Evaluation, EvaluationStatus, Phase, ResourcePool, find_condition
from assay.api.resources import task_resources
from assay.controller import metrics
from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.events import EventPoster, post_event
from assay.controller.indexes import EvaluationKey
from assay.controller.kube import Cluster, is_gone
from assay.controller.pacing import ProgressPacer
from assay.rollup import is_progress_only, status_changes, transition_notices
from assay.rollup.tasks import status_task_seconds


@dataclass
class StatusWriter:
    """Writes desired statuses through ``cluster``; ``pool_moved(pool)`` hears of changes its pool counts,
    ``post_event`` of phase changes."""

    cluster: Cluster
    cache: EvaluationCache
    progress: ProgressPacer
    pool_moved: Callable[[str], None]
    post_event: EventPoster = post_event

    async def write(
        self,
        key: EvaluationKey,
        raw: Mapping[str, Any],
        evaluation: Evaluation,
        pool: ResourcePool | None,
        desired: EvaluationStatus,
    ) -> datetime | None:
        """Write the status if it changed; returns when to write a deferred progress-only change."""
        uid = evaluation.metadata.uid or ""
        stored = self.cache.stored_status(raw)
        patch = status_changes(stored, desired)
        if patch is None:
            # Nothing to write, but a restarted or newly leading operator must still export what it sees.
            observe(evaluation, pool, desired)
            return None
        if is_progress_only(stored, patch):
            due = self.progress.due(uid, age_seconds(evaluation))
            if due is not None:  # the next reconcile then writes the then-current progress
                return datetime.now(UTC) + timedelta(seconds=due - time.monotonic())
        try:
            result = await self.cluster.patch_evaluation_status(key[0], key[1], patch)
        except Exception as exc:
            if is_gone(exc):
                return None
            raise
        self.cache.wrote(uid, result)
        self.progress.wrote(uid)
        before = evaluation.status
        for notice in transition_notices(before, desired):
            self.post_event(raw, notice)
        count_rejection(before, desired)
        observe(evaluation, pool, desired)
        # Budgets count running tasks by their start times: a task that starts or stops moves them.
        moved_money = pool is not None and pool.spec.budgets and before.task_counts != desired.task_counts
        if before.phase != desired.phase or before.queue_position != desired.queue_position or moved_money:
            self.pool_moved(evaluation.spec.pool)
        return None

    def forget(self, uid: str) -> None:
        self.progress.forget(uid)


def age_seconds(evaluation: Evaluation) -> float:
    """Seconds since the Evaluation was created (0 when the apiserver has not said)."""
    created = evaluation.metadata.creation_timestamp
    return max(0.0, (datetime.now(UTC) - created).total_seconds()) if created is not None else 0.0


def count_rejection(before: EvaluationStatus, after: EvaluationStatus) -> None:
    """Count an admission refusal the controller made (the webhook counts its own)."""
    old = find_condition(before.conditions, ConditionType.ACCEPTED.value)
    new = find_condition(after.conditions, ConditionType.ACCEPTED.value)
    if new is not None and not new.is_true and (old is None or old.is_true or old.reason != new.reason):
        metrics.count_admission_rejection(new.reason, "controller")


def observe(evaluation: Evaluation, pool: ResourcePool | None, status: EvaluationStatus) -> None:
    """Export the Evaluation's phase, task counts, GPU time and cost as metrics."""
    counts = status.task_counts
    task_seconds = status_task_seconds(status, status.completion_time)
    gpus = float(task_resources(evaluation.spec, pool).gpus) if pool is not None else 0.0
    cost = status.cost
    terminal = status.phase is not None and status.phase.is_terminal
    metrics.observe_evaluation(
        evaluation.metadata.uid or "",
        namespace=evaluation.namespace,
        pool=evaluation.spec.pool,
        phase=(status.phase or Phase.PENDING).value,
        task_counts=counts.model_dump(exclude={"total"}) if counts is not None else None,
        gpu_seconds=task_seconds * gpus,
        cost=float(cost.accrued) if cost is not None and cost.accrued else 0.0,
        currency=cost.currency if cost is not None else "",
        terminal=terminal,
    )
    if terminal and evaluation.status.phase != status.phase:
        done = [t.completion_time for t in status.tasks if t.completion_time is not None]
        metrics.observe_status_final(evaluation.spec.pool, max(done) if done else datetime.now(UTC))
