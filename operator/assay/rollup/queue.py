"""Pool quota admission: which waiting Evaluations may start now, oldest first. Pure.

An Evaluation holds quota from the moment it is admitted until it is suspended or reaches a terminal phase;
its demand is its per-task requests times its task count (only the resources the quota names count).
Waiting Evaluations are admitted strictly in creation order: when the oldest does not fit, nobody behind it
starts (no back-filling), so a large Evaluation is never starved by a stream of small ones. One that could
never fit (it alone exceeds the quota) does not block the queue; admission rejects it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from assay.api.quantity import parse_quantity

Demand = Mapping[str, Decimal]


@dataclass(frozen=True)
class Claimant:
    """One Evaluation of the pool, as the queue sees it."""

    key: str  # "namespace/name"
    created: datetime
    demand: Demand
    holding: bool  # already admitted (Jobs created) and not suspended or finished


@dataclass(frozen=True)
class QueueState:
    """The outcome of one admission round for a pool."""

    admitted: frozenset[str]  # waiting claimants that may start now
    positions: Mapping[str, int] = field(default_factory=dict)  # the others: 1 = next
    in_use: Mapping[str, Decimal] = field(default_factory=dict)  # held by holders (before admitting)
    never_fits: frozenset[str] = frozenset()


def parse_quota(quota: Mapping[str, str]) -> dict[str, Decimal]:
    return {name: parse_quantity(value) for name, value in quota.items()}


def demand_of(per_task: Mapping[str, str], tasks: int, quota: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """What ``tasks`` tasks with ``per_task`` requests take of the quota's resources."""
    return {name: parse_quantity(value) * tasks for name, value in per_task.items() if name in quota}


def _add(total: dict[str, Decimal], demand: Demand) -> None:
    for name, amount in demand.items():
        total[name] = total.get(name, Decimal(0)) + amount


def fits(in_use: Mapping[str, Decimal], demand: Demand, quota: Mapping[str, Decimal]) -> bool:
    """True when ``demand`` on top of ``in_use`` stays within ``quota`` for every resource the quota names."""
    return all(
        in_use.get(name, Decimal(0)) + demand.get(name, Decimal(0)) <= limit for name, limit in quota.items()
    )


def admit(quota: Mapping[str, Decimal], claimants: Iterable[Claimant]) -> QueueState:
    """Admit waiting claimants oldest first while they fit; the rest get their queue position."""
    everyone = list(claimants)
    in_use: dict[str, Decimal] = {}
    for claimant in everyone:
        if claimant.holding:
            _add(in_use, claimant.demand)
    if not quota:
        waiting_keys = frozenset(c.key for c in everyone if not c.holding)
        return QueueState(admitted=waiting_keys, in_use=in_use)
    after = dict(in_use)
    admitted: set[str] = set()
    positions: dict[str, int] = {}
    never: set[str] = set()
    blocked = False
    for claimant in sorted((c for c in everyone if not c.holding), key=lambda c: (c.created, c.key)):
        if not fits({}, claimant.demand, quota):
            never.add(claimant.key)
            continue
        if not blocked and fits(after, claimant.demand, quota):
            admitted.add(claimant.key)
            _add(after, claimant.demand)
        else:
            blocked = True
            positions[claimant.key] = len(positions) + 1
    return QueueState(
        admitted=frozenset(admitted), positions=positions, in_use=in_use, never_fits=frozenset(never)
    )
