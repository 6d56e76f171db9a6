"""Observed state → status, as pure functions: task states, the Evaluation state machine, pool queueing.

Nothing here talks to the cluster; the controller feeds in what its watches saw and writes what comes out.
"""

from assay.rollup.diff import is_progress_only, status_changes
from assay.rollup.evaluation import (
    RETRYABLE_REASONS,
    Acceptance,
    CreateRefusal,
    Notice,
    Observation,
    Plan,
    QueueVerdict,
    holds_quota,
    plan_evaluation,
    transition_notices,
)
from assay.rollup.observed import owned_jobs, pod_state, pods_of
from assay.rollup.queue import Claimant, QueueState, admit, demand_of, parse_quota
from assay.rollup.tasks import roll_up_tasks

__all__ = [
    "RETRYABLE_REASONS",
    "Acceptance",
    "Claimant",
    "CreateRefusal",
    "Notice",
    "Observation",
    "Plan",
    "QueueState",
    "QueueVerdict",
    "admit",
    "demand_of",
    "holds_quota",
    "is_progress_only",
    "owned_jobs",
    "parse_quota",
    "plan_evaluation",
    "pod_state",
    "pods_of",
    "roll_up_tasks",
    "status_changes",
    "transition_notices",
]
