"""The Evaluation state machine: observed Jobs and pods → the whole desired status, and what to do. Pure.

:func:`plan_evaluation` is the one decision function of the controller. It returns the complete status the
Evaluation should have (the controller writes it only when it differs from the stored one) and the actions
that bring the cluster there (create the next Job, stop or resume Jobs, delete them). It is a chain of
phase rules, one module each under :mod:`assay.rollup.rules`: the first rule that applies decides.

Phases (see the README for the diagram)::

    Pending ─▶ Queued ─▶ Running ─▶ Succeeded | Failed
       │          ▲         │  ▲
       │          └──── Suspended                      any non-terminal ─▶ Cancelled (spec.cancel)
       └─▶ Failed (rejected)                            Running/Suspended ─▶ Expired (auto-release)
    Running ─▶ Failed (CreateRefused: the apiserver refused a Job, Service or Secret for good)

A terminal phase (Succeeded, Failed, Cancelled, Expired) is never left: its status is frozen (an expired
debug run still takes the summary its final pod reports when stopped: see
:func:`~assay.rollup.rules.auto_release.expired_plan`).
Everything that depends on the clock is derived from observed timestamps or changes at a single instant
(expiry), so re-running the plan on the same observations gives the same status: no write loops.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from assay.api import Evaluation, ResourcePool
from assay.render.jobs import RenderOptions
from assay.rollup.notices import Notice, transition_notices
from assay.rollup.plan import (
    RETRYABLE_REASONS,
    Acceptance,
    CreateRefusal,
    Observation,
    Plan,
    QueueVerdict,
)
from assay.rollup.rules import (
    admission,
    auto_release,
    cancel,
    kueue,
    outcome,
    quota,
    refused,
    running,
    suspend,
    terminal,
)
from assay.rollup.rules.auto_release import DEBUG_SUMMARY_WAIT, may_report_after_expiry
from assay.rollup.rules.context import AcceptedContext, Conditions, PlanContext
from assay.rollup.rules.quota import holds_quota

__all__ = [
    "DEBUG_SUMMARY_WAIT",
    "RETRYABLE_REASONS",
    "Acceptance",
    "CreateRefusal",
    "Notice",
    "Observation",
    "Plan",
    "QueueVerdict",
    "holds_quota",
    "may_report_after_expiry",
    "plan_evaluation",
    "transition_notices",
]

# Before admission the statuses keep the stored start time, expiry and debug endpoint.
BEFORE_ADMISSION: tuple[Callable[[PlanContext], Plan | None], ...] = (
    terminal.frozen,
    cancel.cancelled,
    admission.rejected,
)
# Then, in order, what stops or holds an accepted Evaluation before it may run.
HOLDS: tuple[Callable[[AcceptedContext], Plan | None], ...] = (
    refused.create_refused,
    auto_release.expired,
    suspend.suspended,
    quota.queued,  # in a pool in Kueue mode, its budgets only
    kueue.held_by_kueue,  # a pool in Kueue mode: Kueue's verdict
)
OUTCOMES = (outcome.failed, outcome.succeeded)


def plan_evaluation(
    evaluation: Evaluation,
    pool: ResourcePool | None,
    observation: Observation,
    acceptance: Acceptance,
    queue: QueueVerdict,
    now: datetime,
    options: RenderOptions | None = None,
) -> Plan:
    """The desired status and the actions for one Evaluation, from everything observed about it."""
    ctx = PlanContext(
        evaluation=evaluation,
        pool=pool,
        observation=observation,
        acceptance=acceptance,
        queue=queue,
        now=now,
        options=options or RenderOptions(),
        conditions=Conditions(evaluation, now),
    )
    plan = _decide(ctx)
    return kueue.handed_over(plan) if kueue.uses_kueue(pool) else plan


def _decide(ctx: PlanContext) -> Plan:
    """The first plan the phase rules give, in order."""
    for rule in BEFORE_ADMISSION:
        if (plan := rule(ctx)) is not None:
            return plan
    accepted = ctx.accepted()
    for hold in HOLDS:
        if (plan := hold(accepted)) is not None:
            return plan
    tasks = accepted.tasks(stopped=False)
    # Before the outcomes: a pool gone since acceptance shows in whichever status comes out.
    create = running.jobs_to_create(accepted, tasks)
    rechecks: list[datetime] = []
    for decide in OUTCOMES:
        verdict = decide(accepted, tasks)
        if isinstance(verdict, outcome.WaitForReport):
            rechecks.append(verdict.until)
        elif verdict is not None:
            return verdict
    return running.still_running(accepted, tasks, create, rechecks)
