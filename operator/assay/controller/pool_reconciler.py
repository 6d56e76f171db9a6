"""The ResourcePool reconcile: count the pool (capacity, use, queue, budgets), wake the Evaluations whose
chance to run changed, and write the pool's status when its figures change.

Pool, node and namespace events decide here whether they can change a pool's count at all; only those that
can ask for a recount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import kopf

from assay.api import ResourcePool, ResourcePoolStatus, parse_quantity
from assay.api.pool import BudgetStatus
from assay.controller import metrics
from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.events import EventPoster, post_event
from assay.controller.indexes import EvaluationKey, PoolIndex, first, pool_from_index
from assay.controller.kube import Cluster, is_gone
from assay.controller.pool_queue import PoolQueue, PoolRound, held_by_budget, key_name
from assay.rollup import status_changes
from assay.rollup.budgets import budget_notices, budget_statuses, next_change, selects_by_label
from assay.rollup.pools import NodeInfo, pool_status

T = TypeVar("T")


@dataclass
class PoolReconciler:
    """Recounts pools; ``request_pool`` and ``request_evaluation`` ask for reconciles (coalesced)."""

    cluster: Cluster
    cache: EvaluationCache
    queue: PoolQueue
    pools: PoolIndex | None
    nodes: kopf.Index[str, NodeInfo] | None
    request_pool: Callable[[str], None]
    request_evaluation: Callable[[EvaluationKey], None]
    # Only some namespaces watched: a pool's other users are invisible to this operator.
    watches_some_namespaces: bool = False
    kueue_installed: bool = False  # its pools in Kueue mode are not Ready without it
    post_event: EventPoster = post_event
    seen_nodes: dict[str, NodeInfo] = field(default_factory=dict)
    # Namespace labels as last seen, so that only a change of labels recounts budgets.
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # Pool generations seen, so that the pool's own status writes do not re-check its Evaluations.
    generations: dict[str, int | None] = field(default_factory=dict)

    def pool_changed(self, name: str, generation: int | None) -> None:
        """A pool event: when it appeared, went away or its spec changed, recount it and re-check the
        Evaluations that name it (an unknown pool may now exist, a quota may have grown).

        An event of the status alone (our own write coming back) recounts nothing: the count changes only
        with its Evaluations, nodes and namespaces, and at the moments ``next_change`` wakes it for. A
        recount here made a pool with budgeted work running rewrite its status about once a second, its
        ``spent`` having grown a little since the last write.
        """
        if name in self.generations and self.generations[name] == generation:
            return
        self.request_pool(name)
        if generation is None:
            self.generations.pop(name, None)
        else:
            self.generations[name] = generation
        for key in self.cache.unfinished_in(name):
            self.request_evaluation(key)

    def node_changed(self, name: str, info: NodeInfo | None) -> None:
        """A node appeared, changed its labels or allocatable resources, or went away: pools recount."""
        if not _remember(self.seen_nodes, name, info):
            return
        for pool in list(self.pools or {}):
            self.request_pool(pool)

    def namespace_changed(self, name: str, labels: dict[str, str] | None) -> None:
        """A namespace appeared, was relabelled or went away: budgets that select namespaces by label
        count again (its Evaluations' spending may have moved into or out of their scope)."""
        if not _remember(self.namespace_labels, name, labels):
            return
        for pool_name in list(self.pools or {}):
            pool = pool_from_index(self.pools, pool_name)
            if pool is not None and selects_by_label(pool):
                self.request_pool(pool_name)

    async def reconcile(self, name: str) -> datetime | None:
        """Recount the pool; returns when its budgets next change state (None: at its next event)."""
        pool = pool_from_index(self.pools, name)
        if pool is None:
            metrics.forget_pool(name)  # deleted: its series go, its budgets are enforced no more
            return None
        with metrics.reconcile_timer("pool"):
            round_ = self.queue.round(pool)
            if self.watches_some_namespaces and not round_.members:
                # Watching some namespaces only: the pool's other users are invisible here, so its
                # status is left to the operator that sees them (or to the next Evaluation here).
                return None
            self._wake_members(round_)
            holders = [e.spec for key, e in round_.members.items() if self.queue.holds(key, e)]
            nodes = [first(self.nodes, node) for node in list(self.nodes or {})]
            stored = self.queue.stored_pool_status(pool)
            current = pool.model_copy(update={"status": ResourcePoolStatus.model_validate(stored)})
            now = datetime.now(UTC)
            currency = pool.spec.pricing.currency if pool.spec.pricing is not None else ""
            budgets = budget_statuses(round_.standings, round_.verdicts, currency)
            queued = len(round_.state.positions)
            desired = pool_status(
                current,
                [n for n in nodes if n is not None],
                holders,
                queued,
                now,
                budgets,
                kueue_installed=self.kueue_installed,
            )
            wakes = [w for s in round_.standings if (w := next_change(s, round_.charges, now)) is not None]
            _export(name, currency, budgets, desired)
            if status_changes(stored, desired) is None:
                return (
                    min(wakes) if wakes else None
                )  # equal but for lastUpdated, which moves only with a change
            desired = desired.model_copy(update={"last_updated": datetime.now(UTC)})
            await self._write(current, stored, desired)
            return min(wakes) if wakes else None

    def _wake_members(self, round_: PoolRound) -> None:
        """Capacity or money is free for these now, or gone: they decide again."""
        for key, evaluation in round_.members.items():
            name = key_name(key)
            held = round_.verdicts.message(name) is not None
            if name in round_.state.admitted or held != held_by_budget(evaluation):
                self.request_evaluation(key)

    async def _write(
        self, current: ResourcePool, stored: dict[str, Any], desired: ResourcePoolStatus
    ) -> None:
        """One status patch for the pool, and the Events of its budgets' changes."""
        patch = status_changes(stored, desired)
        if patch is None:
            return
        try:
            await self.cluster.patch_pool_status(current.name, patch)
        except Exception as exc:
            if not is_gone(exc):
                raise
            return
        self.queue.pools_written[current.metadata.uid or current.name] = desired.to_api()
        for notice in budget_notices(current.status.budgets, desired.budgets):
            self.post_event(current.to_api(), notice)


def _remember(memory: dict[str, T], name: str, value: T | None) -> bool:
    """Keep ``value`` (None: gone) as what ``name`` is now; whether that differs from what was kept.

    kopf updates an index before its handler runs, so the change is told by this memory, not the index."""
    if memory.get(name) == value:
        return False
    if value is None:
        memory.pop(name, None)
    else:
        memory[name] = value
    return True


def _export(name: str, currency: str, budgets: list[BudgetStatus], desired: ResourcePoolStatus) -> None:
    """The pool's budgets, queue length, capacity and use as metrics."""
    metrics.set_budgets(
        name,
        currency,
        {
            b.name: {
                "spent": float(b.spent),
                "committed": float(b.committed),
                "remaining": float(b.remaining),
            }
            for b in budgets
        },
    )
    metrics.set_queue_length(name, desired.queued_evaluations)
    metrics.set_pool_resources(
        name,
        {k: float(parse_quantity(v)) for k, v in desired.capacity.items()},
        {k: float(parse_quantity(v)) for k, v in desired.in_use.items()},
    )
