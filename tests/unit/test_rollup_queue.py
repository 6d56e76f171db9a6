"""Pool quota admission: oldest first, no back-filling, over-large Evaluations never block (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from assay.rollup import Claimant, admit, demand_of, parse_quota

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUOTA = parse_quota({"nvidia.com/gpu": "8"})


def claimant(key: str, gpus: int, *, age: int, holding: bool = False) -> Claimant:
    return Claimant(
        key=key,
        created=T0 + timedelta(seconds=age),
        demand={"nvidia.com/gpu": Decimal(gpus)},
        holding=holding,
    )


def test_demand_counts_only_quota_resources_times_tasks() -> None:
    assert demand_of({"nvidia.com/gpu": "2", "cpu": "4"}, 3, QUOTA) == {"nvidia.com/gpu": Decimal(6)}


def test_admits_while_it_fits_and_queues_the_rest_in_order() -> None:
    state = admit(QUOTA, [claimant("a", 4, age=0), claimant("b", 4, age=1), claimant("c", 2, age=2)])
    assert state.admitted == {"a", "b"}
    assert state.positions == {"c": 1}


def test_holders_count_against_quota() -> None:
    state = admit(QUOTA, [claimant("running", 6, age=0, holding=True), claimant("new", 4, age=5)])
    assert state.admitted == frozenset()
    assert state.positions == {"new": 1}
    assert state.in_use == {"nvidia.com/gpu": Decimal(6)}


def test_oldest_first_without_back_filling() -> None:
    # "big" waits for 8 free GPUs; "small" is newer and would fit, but must not overtake it.
    state = admit(
        QUOTA,
        [claimant("running", 2, age=0, holding=True), claimant("big", 8, age=1), claimant("small", 1, age=2)],
    )
    assert state.admitted == frozenset()
    assert state.positions == {"big": 1, "small": 2}


def test_creation_order_not_listing_order() -> None:
    state = admit(QUOTA, [claimant("newer", 8, age=9), claimant("older", 8, age=1)])
    assert state.admitted == {"older"}
    assert state.positions == {"newer": 1}


def test_capacity_freed_admits_the_next() -> None:
    before = admit(QUOTA, [claimant("first", 8, age=0, holding=True), claimant("second", 8, age=1)])
    assert before.positions == {"second": 1}
    after = admit(QUOTA, [claimant("second", 8, age=1)])
    assert after.admitted == {"second"}


def test_one_that_never_fits_does_not_block_the_queue() -> None:
    state = admit(QUOTA, [claimant("huge", 16, age=0), claimant("ok", 8, age=1)])
    assert state.never_fits == {"huge"}
    assert state.admitted == {"ok"}


def test_no_quota_admits_everyone() -> None:
    state = admit({}, [claimant("a", 100, age=0), claimant("b", 100, age=1)])
    assert state.admitted == {"a", "b"}
