"""A pool's queue as the controller assembles it: who holds the quota, who may start now, who waits and
where, and what the pool's budgets hold back.

The decisions are the pure functions of :mod:`assay.rollup.queue` and :mod:`assay.rollup.budgets`; this
module gathers their inputs from the indices and remembers the little that must outlive one reconcile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import kopf
from pydantic import ValidationError

from assay.api import ConditionType, Evaluation, Reason, ResourcePool, find_condition
from assay.api.resources import task_resources
from assay.contract import Step
from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.indexes import EvaluationKey, ObjectsIndex, every, first
from assay.rollup import (
    Claimant,
    QueueState,
    QueueVerdict,
    admit,
    demand_of,
    holds_quota,
    owned_jobs,
    parse_quota,
)
from assay.rollup.budgets import (
    BudgetVerdicts,
    Charge,
    Standing,
    charge_of,
    judge,
    selects_by_label,
    standings_of,
)
from assay.rollup.observed import Raw, parse_time
from assay.rollup.pools import show_quantity


@dataclass(frozen=True)
class PoolRound:
    """One look at a pool: its quota queue, its members (Evaluations that may run), its budgets."""

    state: QueueState
    members: dict[EvaluationKey, Evaluation]
    standings: list[Standing]
    verdicts: BudgetVerdicts
    charges: list[Charge]  # every Evaluation of the pool, as budgets see it (empty without budgets)


def held_by_budget(evaluation: Evaluation) -> bool:
    """Whether the Evaluation's status says a budget holds it back (Queued or Suspended for money)."""
    for type_ in (ConditionType.QUEUED, ConditionType.SUSPENDED):
        found = find_condition(evaluation.status.conditions, type_.value)
        if found is not None and found.is_true and found.reason == Reason.BUDGET_EXHAUSTED.value:
            return True
    return False


def key_name(key: EvaluationKey) -> str:
    """How queues and budgets name an Evaluation: ``namespace/name``."""
    return f"{key[0]}/{key[1]}"


@dataclass
class PoolQueue:
    """Assembles :class:`PoolRound`\\ s and queue verdicts from the Evaluation cache and the indices."""

    cache: EvaluationCache
    jobs: ObjectsIndex | None
    namespaces: kopf.Index[str, dict[str, str]] | None  # labels by namespace name
    # Admitted to their pool's quota but perhaps without Jobs in the index yet, by pool.
    admitted: dict[str, set[EvaluationKey]] = field(default_factory=dict)
    # Pool status as last written, by uid (the index may lag behind our own write).
    pools_written: dict[str, dict[str, Any]] = field(default_factory=dict)
    # When this process first saw each budget, by (pool, budget), until the pool's status keeps it.
    budget_since: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # Charges of the pool's Evaluations (see rollup.budgets), by uid, with the version of the status they
    # are from.
    charges: dict[str, tuple[str, Charge | None]] = field(default_factory=dict)

    def jobs_of(self, key: EvaluationKey, evaluation: Evaluation) -> dict[Step, Raw]:
        return owned_jobs(every(self.jobs, key), evaluation.metadata.uid or "")

    def admitted_in(self, pool: str) -> set[EvaluationKey]:
        return self.admitted.setdefault(pool, set())

    def holds(self, key: EvaluationKey, evaluation: Evaluation) -> bool:
        """Whether the Evaluation holds its pool's resources (admitted here, or its Jobs run)."""
        admitted = key in self.admitted.get(evaluation.spec.pool, set())
        return admitted or holds_quota(evaluation, self.jobs_of(key, evaluation))

    def stored_pool_status(self, pool: ResourcePool) -> dict[str, Any]:
        """The pool's status: as this process last wrote it, else as the index has it."""
        return self.pools_written.get(pool.metadata.uid or pool.name) or pool.status.to_api()

    def round(self, pool: ResourcePool) -> PoolRound:
        """Who holds the pool's quota, who may start now, who waits (and where), what budgets hold back."""
        quota = parse_quota(pool.spec.quota)
        self.admitted_in(pool.name)
        claimants, members = [], {}
        for key, evaluation in self.cache.may_run_in(pool.name):  # neither suspended, cancelled nor finished
            spec = evaluation.spec
            accepted = find_condition(evaluation.status.conditions, ConditionType.ACCEPTED.value)
            if accepted is not None and not accepted.is_true:
                continue
            per_task = task_resources(spec, pool).requests
            created = evaluation.metadata.creation_timestamp or datetime.now(UTC)
            demand = demand_of(per_task, spec.tasks, quota)
            claimants.append(Claimant(key_name(key), created, demand, self.holds(key, evaluation)))
            members[key] = evaluation
        charges = list(self._charges_in(pool, members)) if pool.spec.budgets and pool.spec.pricing else []
        standings, verdicts = self._budgets(pool, charges, {c.key for c in claimants if c.holding})
        # Held back by a budget: not in the quota queue (it waits for money, not for resources).
        free = [c for c in claimants if c.key not in verdicts.blocked]
        return PoolRound(admit(quota, free), members, standings, verdicts, charges)

    def verdict(self, key: EvaluationKey, evaluation: Evaluation, pool: ResourcePool | None) -> QueueVerdict:
        """May the Evaluation start now, and if not, why and where it waits."""
        if pool is None or not (pool.spec.quota or pool.spec.budgets):
            return QueueVerdict(admitted=True)
        round_ = self.round(pool)
        state, name = round_.state, key_name(key)
        if (budget := round_.verdicts.message(name)) is not None:
            return QueueVerdict(admitted=False, budget=budget)
        if name in state.admitted or name not in state.positions:
            return QueueVerdict(admitted=True)
        quota = parse_quota(pool.spec.quota)
        wanted = demand_of(task_resources(evaluation.spec, pool).requests, evaluation.spec.tasks, quota)
        zero = Decimal(0)
        usage = ", ".join(
            f"{res} {show_quantity(res, state.in_use.get(res, zero))} of {show_quantity(res, limit)} "
            f"in use, needs {show_quantity(res, wanted.get(res, zero))}"
            for res, limit in quota.items()
        )
        position = state.positions[name]
        return QueueVerdict(
            admitted=False, position=position, message=f"position {position} in the queue; {usage}"
        )

    def _budgets(
        self, pool: ResourcePool, charges: list[Charge], holding: set[str]
    ) -> tuple[list[Standing], BudgetVerdicts]:
        """The pool's budgets now, from every Evaluation of the pool, and what they hold back (the waiting
        are the unfinished ones that neither hold resources nor were suspended by hand)."""
        if not pool.spec.budgets or pool.spec.pricing is None:
            return [], BudgetVerdicts()
        now = datetime.now(UTC)
        stored = self.stored_pool_status(pool)
        since = {b["name"]: b["since"] for b in stored.get("budgets") or [] if b.get("since")}
        known = {
            budget.name: parse_time(since.get(budget.name))
            or self.budget_since.setdefault((pool.name, budget.name), now)
            for budget in pool.spec.budgets
        }
        labels = {}
        if selects_by_label(pool):  # only the namespaces the pool's Evaluations are in
            for namespace in {c.namespace for c in charges}:
                if (found := first(self.namespaces, namespace)) is not None:
                    labels[namespace] = found
        standings = standings_of(pool, known, charges, now, labels)
        holders = [c for c in charges if c.key in holding]
        waiting = [c for c in charges if c.may_run and c.key not in holding]
        return standings, judge(standings, holders, waiting, pool.spec.pricing.currency, now)

    def _charges_in(
        self, pool: ResourcePool, members: Mapping[EvaluationKey, Evaluation]
    ) -> Iterator[Charge]:
        """Every Evaluation of the pool as budgets see it (finished ones too: they spent money)."""
        for key, stored in self.cache.in_pool(pool.name):
            name = key_name(key)
            if key in members:
                charge = charge_of(name, members[key], pool, may_run=True)
            else:
                version = self.cache.status_version(stored)
                cached = self.charges.get(stored.uid)
                if cached is not None and cached[0] == version:
                    charge = cached[1]
                else:
                    raw = stored.raw()
                    try:
                        evaluation = Evaluation.model_validate(
                            {**raw, "status": self.cache.stored_status(raw)}
                        )
                    except ValidationError:
                        continue
                    charge = charge_of(name, evaluation, pool, may_run=False)
                    self.charges[stored.uid] = (version, charge)
            if charge is not None:
                yield charge

    def forget(self, key: EvaluationKey, uid: str, pool: str) -> None:
        """The Evaluation was deleted: its quota frees."""
        self.charges.pop(uid, None)
        self.admitted.get(pool, set()).discard(key)
