"""Pool budgets (pure): windows and their rollover, spent and committed, oldest-first admission, drain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from assay.api import Evaluation
from assay.api.pool import Budget, BudgetState, ResourcePool
from assay.rollup.budgets import (
    Charge,
    budget_notices,
    charge_of,
    judge,
    next_change,
    spent_between,
    standing_of,
    status_of,
    window_of,
)

T0 = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)  # a Wednesday
POOL = ResourcePool.model_validate(
    {
        "metadata": {"name": "a100"},
        "spec": {
            "resources": [{"name": "cpu", "default": "1"}],
            "pricing": {"currency": "EUR", "perHour": {"cpu": "3600"}},  # 1 EUR a second per task
        },
    }
)


def budget(**fields: Any) -> Budget:
    return Budget.model_validate({"name": "team", "spendLimit": "100", **fields})


def charge(
    key: str,
    *spans: tuple[float, float | None],
    created: float = 0,
    maximum: str | None = "60",
    namespace: str = "ns",
    unfinished: bool = True,
) -> Charge:
    """A charge at 1 EUR a second per task; spans in seconds after T0."""
    return Charge(
        key=key,
        namespace=namespace,
        created=T0 + timedelta(seconds=created),
        hourly_per_task=Decimal(3600),
        spans=tuple(
            (T0 + timedelta(seconds=a), None if b is None else T0 + timedelta(seconds=b)) for a, b in spans
        ),
        estimated_max=Decimal(maximum) if maximum is not None else None,
        unfinished=unfinished,
    )


@pytest.mark.parametrize(
    ("interval", "day", "start", "end"),
    [
        ("Weekly", None, datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)),  # Monday
        ("Weekly", 4, datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC)),  # Thursday
        ("Weekly", 3, datetime(2026, 3, 11, tzinfo=UTC), datetime(2026, 3, 18, tzinfo=UTC)),  # today
        ("Monthly", None, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        ("Monthly", 15, datetime(2026, 2, 15, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)),
    ],
)
def test_windows_start_at_midnight_utc_of_their_day(
    interval: str, day: int | None, start: datetime, end: datetime
) -> None:
    assert window_of(budget(interval=interval, intervalDay=day), T0, T0) == (start, end)


def test_monthly_window_rolls_over_december_and_none_never_ends() -> None:
    december = datetime(2026, 12, 20, tzinfo=UTC)
    assert window_of(budget(intervalDay=28), T0, december)[1] == datetime(2026, 12, 28, tzinfo=UTC)
    assert window_of(budget(intervalDay=28), T0, datetime(2026, 12, 29, tzinfo=UTC))[1] == datetime(
        2027, 1, 28, tzinfo=UTC
    )
    assert window_of(budget(interval="None"), T0, december) == (T0, None)


@pytest.mark.parametrize(
    ("interval", "anchor", "now", "window"),
    [
        # Weekly from a Thursday 09:30: the window before and the ones after the anchor.
        ("Weekly", "2026-03-05T09:30:00Z", T0, ("2026-03-05T09:30:00Z", "2026-03-12T09:30:00Z")),
        ("Weekly", "2026-04-02T09:30:00Z", T0, ("2026-03-05T09:30:00Z", "2026-03-12T09:30:00Z")),
        (
            "Weekly",
            "2026-03-05T09:30:00Z",
            "2026-03-12T09:30:00Z",
            ("2026-03-12T09:30:00Z", "2026-03-19T09:30:00Z"),
        ),
        # Monthly from the 31st at 22:00: the last day of shorter months, the 31st again after them.
        ("Monthly", "2026-01-31T22:00:00Z", T0, ("2026-02-28T22:00:00Z", "2026-03-31T22:00:00Z")),
        (
            "Monthly",
            "2026-01-31T22:00:00Z",
            "2026-04-30T21:59:59Z",
            ("2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z"),
        ),
        (
            "Monthly",
            "2026-01-31T22:00:00Z",
            "2026-05-01T00:00:00Z",
            ("2026-04-30T22:00:00Z", "2026-05-31T22:00:00Z"),
        ),
        ("Monthly", "2026-12-15T00:00:00Z", T0, ("2026-02-15T00:00:00Z", "2026-03-15T00:00:00Z")),
        ("None", "2026-03-11T12:00:00Z", T0, ("2026-03-11T12:00:00Z", None)),
    ],
)
def test_windows_may_start_at_a_chosen_moment_and_repeat_from_it(
    interval: str, anchor: str, now: datetime | str, window: tuple[str, str | None]
) -> None:
    at = datetime.fromisoformat(now) if isinstance(now, str) else now
    expected = tuple(None if w is None else datetime.fromisoformat(w) for w in window)
    assert window_of(budget(interval=interval, start=anchor), T0, at) == expected


def test_moving_the_start_rolls_the_window_over_when_the_new_one_begins() -> None:
    """The path tests/integration/test_budgets.py takes: a spent budget's window set to end seconds from now;
    at its end the new window has spent nothing and the waiting Evaluation starts."""
    now = T0 + timedelta(seconds=20)
    boundary = now + timedelta(seconds=10)
    moved = budget(interval="Weekly", spendLimit="15", start=(boundary - timedelta(days=7)).isoformat())
    done = charge("ns/done", (0, 18), unfinished=False)
    waiting = charge("ns/waiting", created=19, maximum=None)
    before = standing_of(moved, T0, [done, waiting], now)
    assert (before.window_end, before.state) == (boundary, BudgetState.EXHAUSTED)
    assert judge([before], [], [waiting], "EUR", now).blocked.keys() == {"ns/waiting"}
    assert next_change(before, [done, waiting], now) == boundary  # the operator wakes itself then
    after = standing_of(moved, T0, [done, waiting], boundary)
    assert (after.window_start, after.spent) == (boundary, Decimal(0))
    assert judge([after], [], [waiting], "EUR", boundary).blocked == {}


def test_a_namespace_selector_scope_counts_the_namespaces_whose_labels_match() -> None:
    now = T0 + timedelta(seconds=10)
    capped = charge("team-a/run", (0, None), maximum=None, namespace="team-a")  # 10 spent
    listed = charge("listed/run", (0, None), maximum=None, namespace="listed")  # 10 spent
    free = charge("team-b/run", (0, None), maximum=None, namespace="team-b")  # not in scope
    unknown = charge("gone/run", (0, None), maximum=None, namespace="gone")  # labels unknown: not in scope
    selected = budget(
        spendLimit="15",
        scope={"namespaces": ["listed"], "namespaceSelector": {"matchLabels": {"budget": "capped"}}},
    )
    labels = {"team-a": {"budget": "capped"}, "team-b": {"budget": "free"}, "listed": {}}
    charges = [capped, listed, free, unknown]
    standing = standing_of(selected, T0, charges, now, labels)
    assert standing.spent == Decimal(20)  # team-a's and listed's, either way in scope
    queued = [
        charge(f"{ns}/next", created=5, maximum=None, namespace=ns) for ns in ("team-a", "team-b", "gone")
    ]
    assert judge([standing], charges, queued, "EUR", now).blocked.keys() == {"team-a/next"}
    # Relabelled out of scope: its spending leaves the budget with it.
    moved = standing_of(selected, T0, charges, now, {**labels, "team-a": {"budget": "free"}})
    assert moved.spent == Decimal(10)
    assert judge([moved], charges, queued, "EUR", now).blocked == {}


def test_spent_counts_task_time_inside_the_window_and_after_since_only() -> None:
    # Two tasks: one ran 0..30 s, one runs from 10 s on; "now" is 40 s.
    running = charge("ns/a", (0, 30), (10, None))
    now = T0 + timedelta(seconds=40)
    assert spent_between(running, T0, None, now) == Decimal(60)  # 30 + 30 task-seconds at 1 EUR
    assert spent_between(running, T0 + timedelta(seconds=20), None, now) == Decimal(30)  # 10 + 20
    assert spent_between(running, T0, T0 + timedelta(seconds=15), now) == Decimal(20)  # 15 + 5
    # A budget created after the work finished is charged nothing for it.
    finished = charge("ns/b", (0, 30), unfinished=False)
    late = standing_of(budget(interval="None"), T0 + timedelta(seconds=31), [finished], now)
    assert (late.spent, late.committed) == (Decimal(0), Decimal(0))


def test_window_rollover_forgets_the_old_window_and_releases_the_waiting() -> None:
    weekly = budget(interval="Weekly", spendLimit="50")
    sunday = datetime(2026, 3, 15, 23, 59, 50, tzinfo=UTC)
    done = Charge(
        key="ns/old",
        namespace="ns",
        created=sunday - timedelta(hours=1),
        hourly_per_task=Decimal(3600),
        spans=((sunday - timedelta(seconds=45), sunday),),
        unfinished=False,
    )
    new = Charge("ns/new", "ns", sunday, Decimal(3600), estimated_max=Decimal(40))
    before = standing_of(weekly, T0, [done, new], sunday)
    assert before.spent == Decimal(45)
    assert judge([before], [], [new], "EUR", sunday).blocked.keys() == {"ns/new"}
    monday = sunday + timedelta(seconds=11)  # the next window
    after = standing_of(weekly, T0, [done, new], monday)
    assert (after.window_start, after.spent) == (datetime(2026, 3, 16, tzinfo=UTC), Decimal(0))
    assert judge([after], [], [new], "EUR", monday).blocked == {}
    # The pool is reconciled at the rollover even when nothing runs.
    assert next_change(before, [done, new], sunday) == datetime(2026, 3, 16, tzinfo=UTC)


def test_committed_is_what_unfinished_evaluations_can_still_cost() -> None:
    now = T0 + timedelta(seconds=20)
    standing = standing_of(
        budget(),
        T0,
        [
            charge("ns/a", (0, None), maximum="60"),  # 20 spent, 40 to go
            charge("ns/b", maximum="30"),  # queued: all 30
            charge("ns/c", (0, None), maximum=None),  # never auto-released: commits nothing
            charge("ns/d", (0, 10), maximum="60", unfinished=False),  # finished: 10 spent, commits nothing
        ],
        now,
    )
    assert (standing.spent, standing.committed, standing.remaining) == (Decimal(50), Decimal(70), 50)
    assert standing.state == BudgetState.OK


def test_admission_is_oldest_first_without_back_filling_and_names_budget_money_and_cost() -> None:
    now = T0 + timedelta(seconds=10)
    running = charge("ns/running", (0, None), maximum="60")  # 10 spent, 50 committed
    older = charge("ns/older", created=1, maximum="45")  # 100 - 10 - 50 = 40 free: does not fit
    younger = charge("ns/younger", created=2, maximum="5")  # would fit, but waits behind the older
    other = charge("other/x", created=3, maximum="5", namespace="other")  # out of scope
    scoped = budget(scope={"namespaces": ["ns"]})
    standing = standing_of(scoped, T0, [running, older, younger, other], now)
    verdicts = judge([standing], [running], [older, younger, other], "EUR", now)
    assert set(verdicts.blocked) == {"ns/older", "ns/younger"}
    assert verdicts.blocked["ns/older"] == (
        "budget team has 90.00 EUR of 100.00 EUR remaining, 50.00 EUR committed; it may cost 45.00 EUR"
    )
    assert verdicts.waiting == {"team": 2}
    assert verdicts.drained == {}
    # Raising the limit releases both, oldest first.
    raised = standing_of(budget(spendLimit="110", scope={"namespaces": ["ns"]}), T0, [running], now)
    assert judge([raised], [running], [older, younger], "EUR", now).blocked == {}


def test_hold_and_drain_suspends_running_work_once_spent_and_hold_does_not() -> None:
    now = T0 + timedelta(seconds=101)
    unbounded = charge("ns/forever", (0, None), maximum=None)
    queued = charge("ns/new", created=50, maximum=None)
    for policy, drained in (("Hold", set()), ("HoldAndDrain", {"ns/forever"})):
        standing = standing_of(budget(whenExhausted=policy), T0, [unbounded], now)
        assert standing.state == BudgetState.EXHAUSTED
        verdicts = judge([standing], [unbounded], [queued], "EUR", now)
        assert set(verdicts.drained) == drained
        # Never auto-released, so it is charged as it runs: it may start only while money is left.
        assert "charged as it runs" in verdicts.blocked["ns/new"]


def test_warnings_once_per_percentage_and_window_and_next_change_at_the_next_mark() -> None:
    warned = budget(warnAt=[50, 80])
    running = charge("ns/a", (0, None), maximum=None)
    at = {s: standing_of(warned, T0, [running], T0 + timedelta(seconds=s)) for s in (40, 60, 85, 100)}
    assert [at[s].state for s in (40, 60, 85, 100)] == ["Ok", "Warning", "Warning", "Exhausted"]
    assert [at[s].warned_at for s in (40, 60, 85)] == [None, 50, 80]
    # At 1 EUR a second from 40 EUR spent: 50 % is reached 10 s later, then 80 %, then the limit.
    assert next_change(at[40], [running], T0 + timedelta(seconds=40)) == T0 + timedelta(seconds=50)
    assert next_change(at[85], [running], T0 + timedelta(seconds=85)) == T0 + timedelta(seconds=100)
    shown = {s: status_of(at[s], "EUR", 0) for s in at}
    assert [n.reason for n in budget_notices([], [shown[60]])] == ["BudgetWarning"]
    assert budget_notices([shown[60]], [shown[60]]) == []  # said once (the status keeps warnedAt)
    (notice,) = budget_notices([shown[60]], [shown[85]])
    assert notice.message == "budget team spent 85.00 of 100.00 EUR, over 80 %"
    assert [n.reason for n in budget_notices([shown[85]], [shown[100]])] == ["BudgetExhausted"]


def test_a_charge_from_status_counts_running_tasks_to_now_and_stopped_ones_to_their_last_moment() -> None:
    def evaluation(phase: str, tasks: list[dict[str, Any]]) -> Evaluation:
        return Evaluation.model_validate(
            {
                "metadata": {"name": "e", "namespace": "ns", "creationTimestamp": T0.isoformat()},
                "spec": {
                    "pool": "a100",
                    "model": {"name": "m", "uri": "file:///m"},
                    "handler": "h:H",
                    "dataset": {"name": "d", "uri": "file:///d"},
                    "tasks": 2,
                    "autoReleaseSeconds": 60,
                },
                "status": {"phase": phase, "tasks": tasks},
            }
        )

    started = (T0 + timedelta(seconds=5)).isoformat()
    ended = (T0 + timedelta(seconds=25)).isoformat()
    tasks = [
        {"step": "predict", "index": 0, "phase": "Succeeded", "startTime": started, "completionTime": ended},
        {"step": "predict", "index": 1, "phase": "Running", "startTime": started},
    ]
    now = T0 + timedelta(seconds=45)
    running = charge_of("ns/e", evaluation("Running", tasks), POOL, may_run=True)
    assert running is not None and running.estimated_max == Decimal("120.00")  # 2 tasks x 60 s x 1 EUR
    assert spent_between(running, T0, None, now) == Decimal(60)  # 20 + 40
    stopped = [{**tasks[1], "phase": "Stopped"}, tasks[0]]
    suspended = charge_of("ns/e", evaluation("Suspended", stopped), POOL, may_run=True)
    assert suspended is not None and spent_between(suspended, T0, None, now) == Decimal(40)  # 20 + 20
    unpriced = POOL.model_copy(update={"spec": POOL.spec.model_copy(update={"pricing": None})})
    assert charge_of("ns/e", evaluation("Running", tasks), unpriced, may_run=True) is None
