"""What an Evaluation will cost, before it is created (pure): the price per hour of its tasks and the most it
can cost, from the pool's pricing and with the operator's own arithmetic (:mod:`assay.api.resources`), so the
quote a user reads is the ``estimatedMax`` the operator will write."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from assay import facts
from assay.api import EvaluationSpec, ResourcePool
from assay.api.resources import (
    effective_auto_release_seconds,
    effective_requests,
    estimated_max_cost,
    format_money,
    price_per_hour,
)


@dataclass(frozen=True)
class Quote:
    currency: str
    per_hour: Decimal  # every predict task together
    at_most: Decimal | None  # None: never auto-released, so no upper bound
    auto_release_seconds: int  # 0: never
    per_task: dict[str, str]  # the requests each task gets (pool defaults merged with the spec's)
    tasks: int


def quote(spec: EvaluationSpec, pool: ResourcePool) -> Quote | None:
    """The price of ``spec`` on ``pool``; None when the pool has no pricing."""
    pricing = pool.spec.pricing
    if pricing is None:
        return None
    per_task = effective_requests(spec, pool)
    return Quote(
        currency=pricing.currency,
        per_hour=format_money(price_per_hour(per_task, spec.tasks, pricing)),
        at_most=estimated_max_cost(spec, pool),
        auto_release_seconds=effective_auto_release_seconds(spec, pool),
        per_task=per_task,
        tasks=spec.tasks,
    )


def quote_text(price: Quote | None) -> str:
    """One line for a terminal: ``2.50 USD/hour for 1 task (nvidia.com/gpu=1 each) · at most 5.00 USD``."""
    if price is None:
        return "the pool has no pricing: no cost is tracked"
    each = ", ".join(f"{k}={v}" for k, v in price.per_task.items())
    tasks = f"{price.tasks} task{'s' if price.tasks != 1 else ''}" + (f" ({each} each)" if each else "")
    if price.at_most is None:
        bound = "no upper bound: never auto-released"
    else:
        after = facts.format_duration(price.auto_release_seconds)
        bound = f"at most {price.at_most} {price.currency} (auto-released after {after})"
    return f"{price.per_hour} {price.currency}/hour for {tasks} · {bound}"
