"""Phases, condition types and reasons of an Evaluation, and the metav1.Condition shape."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from assay.api.common import ApiModel, Timestamp


class Phase(StrEnum):
    """Where an Evaluation is in its life; see the README for the state machine."""

    PENDING = "Pending"  # accepted, its Jobs not yet created
    QUEUED = "Queued"  # waiting for pool quota (oldest first)
    RUNNING = "Running"  # Jobs created; tasks pending or running
    SUCCEEDED = "Succeeded"  # every task succeeded; results in status.results
    FAILED = "Failed"  # a task failed past its retries, the spec was rejected, or results were unreadable
    SUSPENDED = "Suspended"  # spec.suspend is true; tasks stopped, the record kept
    CANCELLED = "Cancelled"  # spec.cancel is true; tasks stopped for good
    EXPIRED = "Expired"  # autoReleaseSeconds reached; tasks stopped, resources freed

    @property
    def is_terminal(self) -> bool:
        """True for phases an Evaluation never leaves (Succeeded, Failed, Cancelled, Expired)."""
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED, Phase.EXPIRED})


class ConditionType(StrEnum):
    """Condition types on an Evaluation (``kubectl wait --for=condition=Succeeded`` uses them)."""

    ACCEPTED = "Accepted"  # the spec passed the checks against its pool (False: reason says why)
    QUEUED = "Queued"  # True while waiting for pool quota
    SCHEDULED = "Scheduled"  # True once every current task pod is bound to a node
    RUNNING = "Running"  # True while tasks run
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    RESULTS_UNREADABLE = "ResultsUnreadable"  # the evaluate step's termination message was not usable


class PoolConditionType(StrEnum):
    """Condition types on a ResourcePool."""

    READY = "Ready"  # the pool's nodes were found and its capacity summed
    QUOTA_EXCEEDED = "QuotaExceeded"  # evaluations are waiting for quota
    GPUS_UNBOUNDED = (
        "GPUsUnbounded"  # a warning: the nodes offer GPUs that resources neither lists nor refuses
    )
    BUDGET_WARNING = "BudgetWarning"  # a budget's spending reached one of its warnAt percentages
    BUDGET_EXHAUSTED = "BudgetExhausted"  # a budget's spending reached its spendLimit


class Reason(StrEnum):
    """Machine-readable reasons of conditions, task entries and events (CamelCase, as Kubernetes wants)."""

    # admission / acceptance
    ACCEPTED = "Accepted"
    UNKNOWN_POOL = "UnknownPool"
    POOL_FORBIDDEN = "PoolForbidden"
    RESOURCES_OUT_OF_RANGE = "ResourcesOutOfRange"
    RESOURCE_NOT_LISTED = "ResourceNotListed"
    SECRET_NOT_FOUND = "SecretNotFound"
    DEBUG_PASSWORD_TOO_SHORT = "DebugPasswordTooShort"
    AUTO_RELEASE_TOO_LONG = "AutoReleaseTooLong"
    EXCEEDS_POOL_QUOTA = "ExceedsPoolQuota"  # one evaluation alone needs more than the whole quota
    # queueing and scheduling
    QUOTA_EXCEEDED = "QuotaExceeded"
    WAITING_FOR_QUOTA = "WaitingForQuota"
    BUDGET_EXHAUSTED = "BudgetExhausted"  # a pool budget has no room for the evaluation's cost
    UNSCHEDULABLE = "Unschedulable"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    PODS_SCHEDULED = "PodsScheduled"
    TASKS_RUNNING = "TasksRunning"
    # outcomes
    ALL_TASKS_SUCCEEDED = "AllTasksSucceeded"
    TASK_FAILED = "TaskFailed"
    RESULTS_UNREADABLE = "ResultsUnreadable"
    AUTO_RELEASED = "AutoReleased"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    CANCELLED = "Cancelled"
    CREATE_REFUSED = "CreateRefused"  # the apiserver refused a Job, Service or Secret the operator renders


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A condition in the shape of metav1.Condition."""

    type: str = Field(
        description="Type of the condition, e.g. Accepted, Running, Succeeded, Failed, Expired.",
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="CamelCase reason for the last transition, e.g. AllTasksSucceeded or TaskFailed.",
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(
        default="", description="Human-readable details of the last transition.", max_length=32768
    )
    last_transition_time: Timestamp = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation the condition was set for.", ge=0
    )

    @property
    def is_true(self) -> bool:
        return self.status == ConditionStatus.TRUE


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of that type, if present."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    *,
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """A new condition list with ``type_`` set; ``lastTransitionTime`` moves only when the status changes.

    Returns the conditions in their existing order (a new type is appended), so that an unchanged status
    gives an equal list and no needless status write.
    """
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    previous = find_condition(conditions, type_)
    transition = now if previous is None or previous.status != status else previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]
