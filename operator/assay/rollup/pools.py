"""A ResourcePool's status from its nodes and the Evaluations that hold its quota. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from assay.api import (
    EvaluationSpec,
    PoolConditionType,
    ResourcePool,
    ResourcePoolStatus,
    UnlistedResources,
    format_quantity,
    parse_quantity,
    set_condition,
)
from assay.api.conditions import Condition, find_condition
from assay.api.pool import BudgetState, BudgetStatus
from assay.api.resources import MEMORY_RESOURCES, is_gpu, task_resources


@dataclass(frozen=True)
class NodeInfo:
    """What pools need of a node: its labels (for the pool's selector) and allocatable resources."""

    labels: Mapping[str, str]
    allocatable: Mapping[str, str]
    schedulable: bool = True


def show_quantity(resource: str, amount: Decimal) -> str:
    """A quantity as status shows it: memory-like resources in binary units (16Gi), others plain."""
    return format_quantity(amount, binary=resource in MEMORY_RESOURCES)


def pool_nodes(pool: ResourcePool, nodes: Iterable[NodeInfo]) -> list[NodeInfo]:
    """The schedulable nodes the pool's node selector matches."""
    selector = pool.spec.node_selector
    return [
        node
        for node in nodes
        if node.schedulable and all(node.labels.get(k) == v for k, v in selector.items())
    ]


def unlisted_gpus(pool: ResourcePool, matching: Iterable[NodeInfo]) -> dict[str, Decimal]:
    """GPUs the pool's nodes offer that its resources do not list (a task may ask for any number), unless
    the pool refuses unlisted resources."""
    if pool.spec.unlisted_resources == UnlistedResources.REFUSE:
        return {}
    offered: dict[str, Decimal] = {}
    for node in matching:
        for name, amount in node.allocatable.items():
            if is_gpu(name) and pool.bounds_for(name) is None:
                offered[name] = offered.get(name, Decimal(0)) + parse_quantity(amount)
    return {name: amount for name, amount in sorted(offered.items()) if amount > 0}


def _gpus_unbounded_message(pool: ResourcePool, unlisted: Mapping[str, Decimal]) -> str:
    if not unlisted:
        return "every GPU the nodes offer is listed in spec.resources, or unlisted resources are refused"
    names = ", ".join(f"{name} ({show_quantity(name, amount)})" for name, amount in unlisted.items())
    counted = all(name in pool.spec.quota for name in unlisted)
    return (
        f"the pool's nodes offer {names} but spec.resources does not list "
        f"{'it' if len(unlisted) == 1 else 'them'}: a task may request any number, "
        f"{'counted by spec.quota only' if counted else 'counted by no quota'}; list "
        f"{'it' if len(unlisted) == 1 else 'them'} with a max (and in spec.quota), "
        "or set spec.unlistedResources: Refuse"
    )


def _budget_conditions(
    conditions: list[Condition], budgets: Sequence[BudgetStatus], now: datetime, generation: int | None
) -> list[Condition]:
    """BudgetWarning and BudgetExhausted, once the pool has (or had) budgets."""
    types = (PoolConditionType.BUDGET_WARNING.value, PoolConditionType.BUDGET_EXHAUSTED.value)
    if not budgets and all(find_condition(conditions, t) is None for t in types):
        return conditions
    warned = [b for b in budgets if b.warned_at is not None]
    spent = [b for b in budgets if b.state == BudgetState.EXHAUSTED]
    conditions = set_condition(
        conditions,
        types[0],
        bool(warned),
        "BudgetWarnAtReached" if warned else "BudgetsBelowWarnAt",
        "; ".join(
            f"budget {b.name} spent {b.spent} of {b.spend_limit} {b.currency} (over {b.warned_at} %)"
            for b in warned
        )
        or "no budget has reached a warnAt percentage",
        now=now,
        observed_generation=generation,
    )
    return set_condition(
        conditions,
        types[1],
        bool(spent),
        "BudgetSpent" if spent else "BudgetsHaveRoom",
        "; ".join(f"budget {b.name} spent {b.spent} of {b.spend_limit} {b.currency}" for b in spent)
        or "no budget is spent",
        now=now,
        observed_generation=generation,
    )


def pool_status(
    pool: ResourcePool,
    nodes: Iterable[NodeInfo],
    holders: Iterable[EvaluationSpec],
    queued: int,
    now: datetime,
    budgets: Sequence[BudgetStatus] = (),
    kueue_installed: bool = False,
) -> ResourcePoolStatus:
    """Capacity (allocatable of the matching nodes) and use (requests of ``holders``, the Evaluations that
    hold quota) of every resource the pool's quota or bounds name; conditions Ready, QuotaExceeded,
    GPUsUnbounded, and with ``budgets`` (see :mod:`assay.rollup.budgets`) BudgetWarning and
    BudgetExhausted. A pool in Kueue mode is not Ready without Kueue installed."""
    names = list(dict.fromkeys([*pool.spec.quota, *(b.name for b in pool.spec.resources)]))
    matching = pool_nodes(pool, nodes)
    capacity = {
        n: sum((parse_quantity(node.allocatable.get(n, "0")) for node in matching), Decimal(0)) for n in names
    }
    in_use = dict.fromkeys(names, Decimal(0))
    running = 0
    for spec in holders:
        running += 1
        for resource, amount in task_resources(spec, pool).requests.items():
            if resource in in_use:
                in_use[resource] += parse_quantity(amount) * spec.tasks
    generation = pool.metadata.generation
    ready = (bool(matching), "NodesFound" if matching else "NoMatchingNodes")
    ready_message = f"{len(matching)} schedulable node(s) match the node selector"
    if pool.uses_kueue and not kueue_installed:
        ready = (False, "KueueNotInstalled")
        ready_message = (
            "spec.admission.queue is Kueue but Kueue is not installed (no CRD workloads.kueue.x-k8s.io, or "
            "installed after the operator started: restart it); the pool's Evaluations wait"
        )
    conditions = set_condition(
        pool.status.conditions,
        PoolConditionType.READY.value,
        *ready,
        ready_message,
        now=now,
        observed_generation=generation,
    )
    conditions = set_condition(
        conditions,
        PoolConditionType.QUOTA_EXCEEDED.value,
        queued > 0,
        "EvaluationsWaiting" if queued else "QuotaAvailable",
        f"{queued} evaluation(s) waiting for quota" if queued else "no evaluation is waiting",
        now=now,
        observed_generation=generation,
    )
    unlisted = unlisted_gpus(pool, matching)
    conditions = set_condition(
        conditions,
        PoolConditionType.GPUS_UNBOUNDED.value,
        bool(unlisted),
        "GPUsNotListed" if unlisted else "GPUsListed",
        _gpus_unbounded_message(pool, unlisted),
        now=now,
        observed_generation=generation,
    )
    conditions = _budget_conditions(conditions, budgets, now, generation)
    return ResourcePoolStatus(
        observed_generation=generation,
        budgets=list(budgets),
        capacity={n: show_quantity(n, v) for n, v in capacity.items()},
        in_use={n: show_quantity(n, v) for n, v in in_use.items()},
        running_evaluations=running,
        queued_evaluations=queued,
        nodes=len(matching),
        conditions=conditions,
        last_updated=pool.status.last_updated,
    )
