"""Pool budgets: windows, money spent and committed, who may start, who is drained. Pure; Decimal only.

Spending is derived, never persisted: from the task start and completion times each Evaluation's status
already keeps, at the pool's prices. So an operator that restarts (or a second one that takes over) finds
the same figures, neither counting anything twice nor forgetting it. A task still running counts up to
``now`` (its status' ``cost.accrued`` only moves when the status does); one stopped (suspended, queued,
finished) up to the last moment its status speaks of, as ``cost.accrued`` does. Only task time inside the
window and after the budget's ``since`` (when the operator first saw the budget, kept in the pool's status)
is charged: costs from before a budget existed are not charged to it.

``committed`` is the most the unfinished Evaluations in scope can still cost: their ``estimatedMax`` minus
what they have cost so far. An Evaluation that is never auto-released (``autoReleaseSeconds: 0``) has no
maximum; it commits nothing and is charged as it runs (a HoldAndDrain budget suspends it once spent).

A budget's scope is a list of namespaces, a selector on namespace labels (the controller passes the labels
of the namespaces it meets), or both; a relabelled namespace takes its spending into or out of the budget.

Admission is oldest first with no back-filling, like quota (:mod:`assay.rollup.queue`): the oldest waiting
Evaluation that does not fit blocks the ones behind it in that budget. Amounts are exact decimals; what
status shows is rounded half up to cents (:func:`assay.api.resources.format_money`).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from assay.api.conditions import Phase
from assay.api.evaluation import Evaluation
from assay.api.pool import (
    Budget,
    BudgetInterval,
    BudgetState,
    BudgetStatus,
    ResourcePool,
    WhenExhausted,
)
from assay.api.resources import estimated_max_cost, format_money, price_per_hour, task_resources
from assay.rollup.notices import Notice

ZERO = Decimal(0)
HOUR = Decimal(3600)
WEEK = timedelta(days=7)


# --- windows -----------------------------------------------------------------------------------------------


def window_of(budget: Budget, since: datetime, now: datetime) -> tuple[datetime, datetime | None]:
    """The window ``now`` falls in: it starts at 00:00 UTC of the budget's intervalDay (a weekday for
    Weekly, a day of the month for Monthly), or every week or month from its ``start``; a budget of
    interval None has one window from ``start``, else from ``since``."""
    if budget.start is not None:
        return _window_from(budget.interval, budget.start, now)
    day = budget.interval_day or 1
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if budget.interval == BudgetInterval.WEEKLY:
        start = midnight - timedelta(days=(midnight.isoweekday() - day) % 7)
        return start, start + WEEK
    if budget.interval == BudgetInterval.MONTHLY:
        start = midnight.replace(day=day)
        if start > midnight:
            start = _add_months(start, -1)
        return start, _add_months(start, 1)
    return since, None


def _window_from(
    interval: BudgetInterval, anchor: datetime, now: datetime
) -> tuple[datetime, datetime | None]:
    """The window ``now`` falls in when windows start at ``anchor`` and every interval before and after."""
    if interval == BudgetInterval.WEEKLY:
        start = anchor + WEEK * ((now - anchor) // WEEK)
        return start, start + WEEK
    if interval == BudgetInterval.MONTHLY:
        # Counted from the anchor each time, so that a 31st anchor comes back after a short month.
        months = (now.year - anchor.year) * 12 + now.month - anchor.month
        if _add_months(anchor, months) > now:
            months -= 1
        return _add_months(anchor, months), _add_months(anchor, months + 1)
    return anchor, None


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


# --- what one Evaluation costs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Charge:
    """One Evaluation of the pool, as budgets see it (built from its spec and status)."""

    key: str  # "namespace/name"
    namespace: str
    created: datetime
    hourly_per_task: Decimal
    # (start, end) of each task that started; end None = still running (charged up to now).
    spans: tuple[tuple[datetime, datetime | None], ...] = ()
    # Unlisted succeeded tasks (large Evaluations) keep only their seconds: charged at ``extra_at``.
    extra_seconds: Decimal = ZERO
    extra_at: datetime | None = None
    estimated_max: Decimal | None = None  # None: never auto-released, or no pricing
    unfinished: bool = True  # not in a terminal phase: it may still cost money
    may_run: bool = True  # accepted, neither suspended by hand nor cancelled: it may start now


def charge_of(key: str, evaluation: Evaluation, pool: ResourcePool, *, may_run: bool) -> Charge | None:
    """The Evaluation as budgets see it; None when the pool has no pricing (nothing costs money)."""
    pricing = pool.spec.pricing
    if pricing is None:
        return None
    status = evaluation.status
    running = status.phase == Phase.RUNNING
    moments = [t for task in status.tasks for t in (task.start_time, task.completion_time) if t is not None]
    # A stopped task counts up to the last moment the status knows of, like status.cost.accrued.
    stopped_at = status.completion_time or (max(moments) if moments else None)
    spans = tuple(
        (task.start_time, task.completion_time or (None if running else stopped_at))
        for task in status.tasks
        if task.start_time is not None
    )
    extra = status.succeeded_tasks.task_seconds if status.succeeded_tasks is not None else 0
    maximum = status.cost.estimated_max if status.cost is not None else None
    estimated = Decimal(maximum) if maximum else estimated_max_cost(evaluation.spec, pool)
    return Charge(
        key=key,
        namespace=evaluation.namespace,
        created=evaluation.metadata.creation_timestamp or datetime.now(UTC),
        hourly_per_task=price_per_hour(task_resources(evaluation.spec, pool).requests, 1, pricing),
        spans=spans,
        extra_seconds=Decimal(str(extra)),
        extra_at=status.start_time,
        estimated_max=estimated,
        unfinished=not (status.phase is not None and status.phase.is_terminal),
        may_run=may_run,
    )


def spent_between(charge: Charge, start: datetime, end: datetime | None, now: datetime) -> Decimal:
    """Money of the charge's task time between ``start`` and ``end`` (None = no end), as of ``now``."""
    seconds = ZERO
    for task_start, task_end in charge.spans:
        low = max(task_start, start)
        high = min(x for x in (task_end or now, end, now) if x is not None)
        if high > low:
            seconds += Decimal(str((high - low).total_seconds()))
    if charge.extra_at is not None and charge.extra_at >= start and (end is None or charge.extra_at < end):
        seconds += charge.extra_seconds
    return charge.hourly_per_task * seconds / HOUR


def still_to_cost(charge: Charge, now: datetime) -> Decimal:
    """The most an unfinished charge can still cost: estimatedMax minus what it cost so far."""
    if not charge.unfinished or charge.estimated_max is None:
        return ZERO
    so_far = spent_between(charge, datetime.min.replace(tzinfo=UTC), None, now)
    return max(ZERO, charge.estimated_max - so_far)


def burn_rate(charge: Charge) -> Decimal:
    """Money per second the charge costs right now (its running tasks)."""
    running = sum(1 for _, end in charge.spans if end is None)
    return charge.hourly_per_task * running / HOUR


# --- one budget ------------------------------------------------------------------------------------------


def in_scope(budget: Budget, namespace: str, labels: Mapping[str, str] | None) -> bool:
    """Whether the budget counts the namespace's Evaluations: listed, or its ``labels`` match the selector
    (like a pool's own namespaces and namespaceSelector); a namespace whose labels are unknown matches no
    selector."""
    scope = budget.scope
    if scope is None or (scope.namespaces is None and scope.namespace_selector is None):
        return True
    if scope.namespaces is not None and namespace in scope.namespaces:
        return True
    selector = scope.namespace_selector
    return selector is not None and labels is not None and selector.matches(dict(labels))


def selects_by_label(pool: ResourcePool) -> bool:
    """Whether any budget of the pool needs namespace labels to know its scope."""
    return any(b.scope is not None and b.scope.namespace_selector is not None for b in pool.spec.budgets)


@dataclass(frozen=True)
class Standing:
    """A budget's money in its current window, exact."""

    budget: Budget
    since: datetime
    window_start: datetime
    window_end: datetime | None
    limit: Decimal
    spent: Decimal
    committed: Decimal
    charged_from: datetime  # the later of window start and since
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # by namespace

    def covers(self, namespace: str) -> bool:
        return in_scope(self.budget, namespace, self.namespace_labels.get(namespace))

    @property
    def remaining(self) -> Decimal:
        return max(ZERO, self.limit - self.spent)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit

    @property
    def warned_at(self) -> int | None:
        """The highest warnAt percentage spent has reached, if any."""
        reached = [p for p in self.budget.warn_at if self.spent * 100 >= self.limit * p]
        return max(reached) if reached else None

    @property
    def state(self) -> BudgetState:
        if self.exhausted:
            return BudgetState.EXHAUSTED
        return BudgetState.WARNING if self.warned_at is not None else BudgetState.OK


def standing_of(
    budget: Budget,
    since: datetime,
    charges: Iterable[Charge],
    now: datetime,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> Standing:
    """Spent and committed of the charges in the budget's scope, in the window ``now`` falls in
    (``namespace_labels`` by namespace, for a scope's namespaceSelector)."""
    window_start, window_end = window_of(budget, since, now)
    standing = Standing(
        budget=budget,
        since=since,
        window_start=window_start,
        window_end=window_end,
        limit=Decimal(budget.spend_limit),
        spent=ZERO,
        committed=ZERO,
        charged_from=max(window_start, since),
        namespace_labels=namespace_labels or {},
    )
    spent = committed = ZERO
    for charge in charges:
        if standing.covers(charge.namespace):
            spent += spent_between(charge, standing.charged_from, window_end, now)
            committed += still_to_cost(charge, now)
    return replace(standing, spent=spent, committed=committed)


def status_of(standing: Standing, currency: str, waiting: int) -> BudgetStatus:
    """What the pool's status shows of a budget, rounded half up to cents."""
    return BudgetStatus(
        name=standing.budget.name,
        since=standing.since,
        window_start=standing.window_start,
        window_end=standing.window_end,
        currency=currency,
        spend_limit=str(format_money(standing.limit)),
        spent=str(format_money(standing.spent)),
        committed=str(format_money(standing.committed)),
        remaining=str(format_money(standing.remaining)),
        state=standing.state,
        warned_at=standing.warned_at,
        waiting=waiting,
    )


def next_change(standing: Standing, charges: Iterable[Charge], now: datetime) -> datetime | None:
    """When the budget's state changes next at the current burn rate: the next warnAt percentage or the
    limit is reached, or the window ends (the pool is reconciled then, so that no timer polls)."""
    rate = sum((burn_rate(c) for c in charges if standing.covers(c.namespace)), start=ZERO)
    moments = [standing.window_end] if standing.window_end is not None else []
    if rate > 0:
        marks = [standing.limit * p / 100 for p in standing.budget.warn_at] + [standing.limit]
        ahead = [mark for mark in marks if mark > standing.spent]
        if ahead:
            seconds = (min(ahead) - standing.spent) / rate
            moments.append(now + timedelta(seconds=float(seconds)))
    return min(moments) if moments else None


# --- admission and drain ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetVerdicts:
    """Per Evaluation key: why a budget holds it back (a message), and which running ones to drain."""

    blocked: Mapping[str, str] = field(default_factory=dict)
    drained: Mapping[str, str] = field(default_factory=dict)
    waiting: Mapping[str, int] = field(default_factory=dict)  # per budget name

    def message(self, key: str) -> str | None:
        return self.drained.get(key) or self.blocked.get(key)


def _need(charge: Charge, now: datetime) -> Decimal:
    if charge.estimated_max is None:
        return ZERO  # unbounded: charged as it runs, so it starts whenever money is left
    return still_to_cost(charge, now)


def judge(
    standings: Sequence[Standing],
    holders: Iterable[Charge],
    waiting: Iterable[Charge],
    currency: str,
    now: datetime,
) -> BudgetVerdicts:
    """Which waiting Evaluations a budget holds back (oldest first: the first that does not fit blocks the
    rest of its budget), and which running ones a HoldAndDrain budget that is spent suspends.

    A waiting Evaluation fits when what it can cost fits in ``spendLimit - spent - committed``, committed
    counting only the holders and those admitted before it in this round."""
    holding = list(holders)
    # Waiting: new, queued, or suspended by a budget (resuming needs only what it can still cost).
    queue = sorted(waiting, key=lambda c: (c.created, c.key))
    blocked: dict[str, str] = {}
    drained: dict[str, str] = {}
    counts: dict[str, int] = {}
    for standing in standings:
        budget = standing.budget
        shown_limit = f"{format_money(standing.limit)} {currency}"
        if budget.when_exhausted == WhenExhausted.HOLD_AND_DRAIN and standing.exhausted:
            for charge in holding:
                if standing.covers(charge.namespace):
                    drained.setdefault(
                        charge.key,
                        f"budget {budget.name} is spent ({format_money(standing.spent)} of {shown_limit}): "
                        "tasks suspended, the record kept; they resume when the budget has room again",
                    )
        committed = sum((still_to_cost(c, now) for c in holding if standing.covers(c.namespace)), ZERO)
        free = standing.limit - standing.spent - committed
        stuck = False
        for charge in queue:
            if not standing.covers(charge.namespace) or charge.key in blocked:
                continue
            need = _need(charge, now)
            fits = free > 0 and need <= free if charge.estimated_max is None else need <= free
            if not stuck and fits:
                free -= need
                continue
            stuck = True
            counts[budget.name] = counts.get(budget.name, 0) + 1
            cost = (
                f"it may cost {format_money(need)} {currency}"
                if charge.estimated_max is not None
                else "it is never auto-released, so it is charged as it runs"
            )
            blocked[charge.key] = (
                f"budget {budget.name} has {format_money(standing.remaining)} {currency} of {shown_limit} "
                f"remaining, {format_money(committed)} {currency} committed; {cost}"
            )
    return BudgetVerdicts(blocked=blocked, drained=drained, waiting=counts)


def budget_statuses(
    standings: Sequence[Standing], verdicts: BudgetVerdicts, currency: str
) -> list[BudgetStatus]:
    return [status_of(s, currency, verdicts.waiting.get(s.budget.name, 0)) for s in standings]


def standings_of(
    pool: ResourcePool,
    since: Mapping[str, datetime],
    charges: Sequence[Charge],
    now: datetime,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Standing]:
    """Every budget of the pool; ``since`` by budget name (a budget not in it starts now)."""
    return [standing_of(b, since.get(b.name, now), charges, now, namespace_labels) for b in pool.spec.budgets]


def budget_notices(before: Sequence[BudgetStatus], after: Sequence[BudgetStatus]) -> list[Notice]:
    """Events for a budget that reached a higher warnAt percentage or its limit in its window (once: the
    pool's status keeps what was reached, so a restarted operator does not post them again)."""
    old = {b.name: b for b in before}
    notices = []
    for budget in after:
        previous = old.get(budget.name)
        same_window = previous is not None and previous.window_start == budget.window_start
        shown = f"budget {budget.name} spent {budget.spent} of {budget.spend_limit} {budget.currency}"
        if budget.state == BudgetState.EXHAUSTED:
            if not (same_window and previous is not None and previous.state == BudgetState.EXHAUSTED):
                notices.append(Notice("Warning", "BudgetExhausted", f"{shown}: new evaluations wait"))
        elif budget.warned_at is not None and (
            not same_window or previous is None or (previous.warned_at or 0) < budget.warned_at
        ):
            notices.append(Notice("Warning", "BudgetWarning", f"{shown}, over {budget.warned_at} %"))
    return notices
