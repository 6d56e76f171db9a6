"""PoolQueue: the quota queue assembled from the cache and the Jobs index, and the verdict it gives."""

from __future__ import annotations

from typing import Any

from controller_fakes import evaluation_index, raw_evaluation
from test_rollup_evaluation import POOL, job

from assay.api import Evaluation
from assay.contract import Step
from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.pool_queue import PoolQueue, held_by_budget


def eight_gpus(name: str, created: str) -> dict[str, Any]:
    return raw_evaluation(name, created=created, tasks=1, resources={"nvidia.com/gpu": "8"})


def queue_of(*raws: dict[str, Any], jobs: dict[Any, list[Any]] | None = None) -> PoolQueue:
    cache = EvaluationCache(evaluation_index(*raws))
    return PoolQueue(cache, jobs or {}, None)


def running_job(owner: str) -> dict[str, Any]:
    found = job(Step.ALL)
    found["metadata"]["ownerReferences"] = [{"uid": f"{owner}-uid", "kind": "Evaluation", "name": owner}]
    return found


def test_a_pool_without_quota_or_budgets_admits_everyone() -> None:
    pool = POOL.model_copy(update={"spec": POOL.spec.model_copy(update={"quota": None})})
    queue = queue_of(eight_gpus("a", "2026-01-01T12:00:00Z"))
    found = queue.cache.get(("ns", "a"))
    assert found is not None
    assert queue.verdict(("ns", "a"), found[1], pool).admitted


def test_the_younger_waits_while_the_older_holds_the_quota_through_its_jobs() -> None:
    older, younger = (
        eight_gpus("older", "2026-01-01T12:00:00Z"),
        eight_gpus("younger", "2026-01-01T12:01:00Z"),
    )
    queue = queue_of(older, younger, jobs={("ns", "older"): [running_job("older")]})
    found = queue.cache.get(("ns", "younger"))
    assert found is not None
    verdict = queue.verdict(("ns", "younger"), found[1], POOL)
    assert not verdict.admitted
    assert verdict.position == 1
    assert verdict.message == "position 1 in the queue; nvidia.com/gpu 8 of 8 in use, needs 8"


def test_admitted_here_holds_the_quota_before_its_jobs_show_up() -> None:
    older, younger = (
        eight_gpus("older", "2026-01-01T12:00:00Z"),
        eight_gpus("younger", "2026-01-01T12:01:00Z"),
    )
    queue = queue_of(older, younger)
    found = queue.cache.get(("ns", "older"))
    assert found is not None
    assert queue.verdict(("ns", "older"), found[1], POOL).admitted
    queue.admitted_in("a100").add(("ns", "older"))
    assert queue.holds(("ns", "older"), found[1])
    queue.forget(("ns", "older"), "older-uid", "a100")
    assert not queue.holds(("ns", "older"), found[1])


def test_held_by_budget_reads_the_queued_or_suspended_reason() -> None:
    def with_condition(type_: str, reason: str) -> Evaluation:
        condition = {"type": type_, "status": "True", "reason": reason, "message": "",
                     "lastTransitionTime": "2026-01-01T12:00:00Z"}  # fmt: skip
        return Evaluation.model_validate(raw_evaluation(status={"conditions": [condition]}))

    assert held_by_budget(with_condition("Queued", "BudgetExhausted"))
    assert held_by_budget(with_condition("Suspended", "BudgetExhausted"))
    assert not held_by_budget(with_condition("Queued", "QuotaExhausted"))
