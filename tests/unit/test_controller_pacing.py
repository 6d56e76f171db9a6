"""Progress writes: at most one per interval per Evaluation, and at most `rate` a second in all."""

from __future__ import annotations

from assay.controller.pacing import ProgressPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_evaluation_writes_progress_once_per_interval() -> None:
    clock = Clock()
    pacer = ProgressPacer(interval=5, rate=10, clock=clock)
    pacer.wrote("a")  # the Running write
    clock.now += 1
    assert pacer.due("a") == 105.0
    assert pacer.due("a") == 105.0  # asking again keeps the same turn
    clock.now = 105.0
    assert pacer.due("a") is None  # its turn: write now
    pacer.wrote("a")
    clock.now += 0.5
    assert pacer.due("a") == 110.0


def test_many_evaluations_share_the_operator_wide_budget() -> None:
    clock = Clock()
    pacer = ProgressPacer(interval=5, rate=2, clock=clock)
    for uid in "abcdef":
        pacer.wrote(uid)
    clock.now += 10  # every one is past its own interval
    turns = [pacer.due(uid) for uid in "abcdef"]
    assert turns[0] is None  # the first slot is now
    assert turns[1:] == [110.5, 111.0, 111.5, 112.0, 112.5]  # then one every half second


def test_an_evaluation_unknown_after_a_restart_is_paced_by_the_budget_alone() -> None:
    clock = Clock()
    pacer = ProgressPacer(interval=5, rate=1, clock=clock)
    assert pacer.due("a") is None
    assert pacer.due("b") == 101.0


def test_zero_interval_and_rate_write_at_once() -> None:
    pacer = ProgressPacer(interval=0, rate=0)
    pacer.wrote("a")
    assert pacer.due("a") is None


def test_a_write_is_planned_from_its_grant_until_it_is_made() -> None:
    clock = Clock()
    pacer = ProgressPacer(interval=5, rate=10, clock=clock)
    assert not pacer.planned("a")  # nothing asked yet
    pacer.wrote("a")
    assert not pacer.planned("a")  # written, but no later write granted
    clock.now += 1
    assert pacer.due("a") == 105.0
    assert pacer.planned("a")  # a later write is granted: a change of progress may wait for it
    clock.now = 105.0
    assert not pacer.planned("a")  # its time has come: the reconcile that comes now writes it


def test_an_older_evaluation_waits_a_fraction_of_its_age_up_to_the_maximum() -> None:
    clock = Clock()
    pacer = ProgressPacer(interval=5, rate=0, age_fraction=0.1, max_interval=60, clock=clock)
    for uid in "abc":
        pacer.wrote(uid)
    clock.now += 1
    assert pacer.due("a", age=20) == 105.0  # young: the plain interval
    assert pacer.due("b", age=300) == 130.0  # five minutes old: every 30 s
    assert pacer.due("c", age=7200) == 160.0  # two hours old: at most a minute


def test_the_age_bound_caps_progress_writes_over_a_lifetime() -> None:
    clock = Clock()
    pacer = ProgressPacer(interval=5, rate=0, age_fraction=0.1, max_interval=60, clock=clock)
    created = clock.now
    pacer.wrote("a")
    writes = 0
    while clock.now - created < 3600:  # progress changes every second for an hour
        clock.now += 1
        if pacer.due("a", age=clock.now - created) is None:
            pacer.wrote("a")
            writes += 1
    # A fixed 5 s interval would be 720 writes; by age: every 5 s for the first 50 s, then growing by a
    # tenth each time up to a minute (from 600 s on), about 84 in all.
    assert 75 <= writes <= 95
