"""Kubernetes Events worth posting: an Evaluation's notable phase changes (the pool budgets' are in
:mod:`assay.rollup.budgets`). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from assay.api import ConditionType, EvaluationStatus, Phase, Reason, find_condition

QUIET_FIRST_PHASES = frozenset({Phase.RUNNING, Phase.SUSPENDED, Phase.QUEUED})


@dataclass(frozen=True)
class Notice:
    """A Kubernetes Event worth posting."""

    type: str  # Normal or Warning
    reason: str
    message: str


def transition_notices(before: EvaluationStatus, after: EvaluationStatus) -> list[Notice]:
    """Events for notable transitions only: a phase change (never the same phase twice).

    The expected course posts none: a new Evaluation's expected first phase (Running, Suspended as asked,
    Queued for quota) and success. The status says so at once (with the condition's time and message), and
    the Job controller records its Jobs' creation and completion; an event there would be one more write
    for every Evaluation. A rejection, a failure, an expiry, a wait for quota, a suspension or resumption,
    a cancellation do post."""
    if after.phase is None or before.phase == after.phase or after.phase == Phase.SUCCEEDED:
        return []
    if before.phase is None and after.phase in QUIET_FIRST_PHASES:
        return []
    warning = after.phase == Phase.FAILED or after.phase == Phase.EXPIRED
    reason = {
        Phase.PENDING: "Pending",
        Phase.QUEUED: _reason_of(after, ConditionType.QUEUED) or Reason.WAITING_FOR_QUOTA.value,
        Phase.RUNNING: "Started" if before.phase != Phase.SUSPENDED else Reason.RESUMED.value,
        Phase.FAILED: _reason_of(after, ConditionType.FAILED) or "Failed",
        Phase.SUSPENDED: _reason_of(after, ConditionType.SUSPENDED) or Reason.SUSPENDED.value,
        Phase.CANCELLED: Reason.CANCELLED.value,
        Phase.EXPIRED: Reason.AUTO_RELEASED.value,
    }[after.phase]
    return [Notice("Warning" if warning else "Normal", reason, after.message or after.phase.value)]


def _reason_of(status: EvaluationStatus, type_: ConditionType) -> str | None:
    condition = find_condition(status.conditions, type_.value)
    return condition.reason if condition is not None else None
