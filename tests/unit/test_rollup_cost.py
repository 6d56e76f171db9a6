"""rollup.cost: money accrued at the pool's prices; never less than what the status already says."""

from __future__ import annotations

from decimal import Decimal

from test_rollup_evaluation import POOL, make_evaluation

from assay.api import Cost, ResourcePool
from assay.rollup.cost import cost_for_seconds

UNPRICED = ResourcePool.model_validate(
    {"metadata": {"name": "a100"}, "spec": {"resources": POOL.spec.resources}}
)


def test_half_an_hour_of_one_gpu_at_3_60_an_hour() -> None:
    cost = cost_for_seconds(make_evaluation(), POOL, 1800, None)
    assert cost is not None
    assert (cost.currency, Decimal(cost.accrued or "0")) == ("USD", Decimal("1.80"))
    assert cost.estimated_max is not None


def test_accrued_never_goes_down_and_a_known_estimate_stays() -> None:
    previous = Cost(currency="USD", estimated_max="99.00", accrued="5.00")
    cost = cost_for_seconds(make_evaluation(), POOL, 60, previous)
    assert cost is not None
    assert (Decimal(cost.accrued or "0"), cost.estimated_max) == (Decimal("5.00"), "99.00")


def test_no_pricing_no_new_cost() -> None:
    previous = Cost(currency="EUR", accrued="1.00")
    assert cost_for_seconds(make_evaluation(), UNPRICED, 3600, previous) is previous
    assert cost_for_seconds(make_evaluation(), None, 3600, None) is None
