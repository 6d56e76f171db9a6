"""What :func:`~assay.rollup.evaluation.plan_evaluation` reads besides the Evaluation, and its plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from assay.api import EvaluationStatus, Phase, Reason
from assay.contract import Step
from assay.rollup.observed import PodState, Raw


@dataclass(frozen=True)
class Acceptance:
    """The admission re-check's verdict on the spec against its pool, namespace and debug Secret."""

    accepted: bool
    reason: str = Reason.ACCEPTED.value
    message: str = ""
    # Not accepted now, but possibly later without touching the Evaluation (the pool may be created, the
    # namespace allowed, the Secret created): phase Pending, not Failed.
    retryable: bool = False


# Rejections an admin or the user can fix without changing the (immutable) spec.
RETRYABLE_REASONS = frozenset(
    {
        Reason.UNKNOWN_POOL.value,
        Reason.POOL_FORBIDDEN.value,
        Reason.SECRET_NOT_FOUND.value,
        Reason.DEBUG_PASSWORD_TOO_SHORT.value,
    }
)


@dataclass(frozen=True)
class QueueVerdict:
    """Whether pool quota lets the Evaluation start now (ignored once it holds quota), and whether a pool
    budget holds it back: ``budget`` names the budget, the money left and its cost. A budget verdict on an
    Evaluation that runs (or a budget suspended) means HoldAndDrain: suspended, never deleted."""

    admitted: bool
    position: int | None = None
    message: str = ""
    budget: str | None = None


@dataclass(frozen=True)
class CreateRefusal:
    """The apiserver refused to create an object the operator rendered, for a reason sending it again
    cannot fix (invalid, over a ResourceQuota, forbidden by policy)."""

    kind: str
    name: str
    status: int  # the HTTP status
    message: str  # the apiserver's

    def describe(self) -> str:
        return f"the apiserver refused to create {self.kind} {self.name} ({self.status}): {self.message}"


@dataclass(frozen=True)
class Observation:
    """The Evaluation's Jobs (this incarnation's, by step), their task pods, and a refused create; for a
    pool in Kueue mode, the Workloads Kueue made of the Jobs (by step) and whether Kueue is installed."""

    jobs: Mapping[Step, Raw] = field(default_factory=dict)
    pods: Sequence[PodState] = ()
    refused: CreateRefusal | None = None
    workloads: Mapping[Step, Raw] = field(default_factory=dict)
    kueue_installed: bool = False


@dataclass(frozen=True)
class Plan:
    """What the controller should make true, then write."""

    status: EvaluationStatus
    create_jobs: tuple[Step, ...] = ()
    delete_jobs: bool = False
    suspend_jobs: bool | None = None  # desired spec.suspend of existing unfinished Jobs
    # Kueue mode, where Kueue alone sets the Jobs' spec.suspend: desired spec.active of their Workloads
    # (False stops them: Kueue's way for a user to stop a workload).
    workloads_active: bool | None = None
    ensure_debug: bool = False  # the debug Service (and the generated Secret when no ref is given)
    recheck_at: datetime | None = None  # run the plan again then (auto-release, late pod reports)

    @property
    def phase(self) -> Phase | None:
        return self.status.phase
