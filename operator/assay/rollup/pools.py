"""A ResourcePool's status from its nodes and the Evaluations that hold its quota. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from assay.api import (
    EvaluationSpec,
    PoolConditionType,
    ResourcePool,
    ResourcePoolStatus,
    format_quantity,
    parse_quantity,
    set_condition,
)
from assay.api.resources import MEMORY_RESOURCES, task_resources


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


def pool_status(
    pool: ResourcePool,
    nodes: Iterable[NodeInfo],
    holders: Iterable[EvaluationSpec],
    queued: int,
    now: datetime,
) -> ResourcePoolStatus:
    """Capacity (allocatable of the matching nodes) and use (requests of ``holders``, the Evaluations that
    hold quota) of every resource the pool's quota or bounds name; conditions Ready and QuotaExceeded."""
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
    conditions = set_condition(
        pool.status.conditions,
        PoolConditionType.READY.value,
        bool(matching),
        "NodesFound" if matching else "NoMatchingNodes",
        f"{len(matching)} schedulable node(s) match the node selector",
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
    return ResourcePoolStatus(
        observed_generation=generation,
        capacity={n: show_quantity(n, v) for n, v in capacity.items()},
        in_use={n: show_quantity(n, v) for n, v in in_use.items()},
        running_evaluations=running,
        queued_evaluations=queued,
        nodes=len(matching),
        conditions=conditions,
        last_updated=pool.status.last_updated,
    )
