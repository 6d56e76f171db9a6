"""Reading observed Jobs and pods (raw API dicts): which step, which index, what state. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from assay.api.indexes import parse_index_ranges
from assay.contract import TASK_CONTAINER, Step
from assay.render.names import JOB_COMPLETION_INDEX, LABEL_STEP

Raw = Mapping[str, Any]

# Waiting reasons of a container that mean its image cannot be had: report them, do not call it running.
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
# Waiting reasons that mean the pod cannot start as configured (e.g. a missing Secret key).
CONFIG_ERROR_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
# The Job controller counts an index's earlier pods on each replacement: failures that used up a retry, and
# those its podFailurePolicy ignored (evictions, preemptions); those pods may long be gone.
FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API, or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        # Plain dicts first: an ABC isinstance check on every step was a tenth of the rollup's time.
        if type(obj) is not dict and not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def step_of(obj: Raw) -> Step | None:
    """The step label of a Job or pod."""
    try:
        return Step(_get(obj, "metadata", "labels", LABEL_STEP))
    except ValueError:
        return None


def job_condition(job: Raw, type_: str) -> Raw | None:
    """The Job condition of that type when its status is True."""
    conditions: Sequence[Raw] = _get(job, "status", "conditions") or []
    for condition in conditions:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return condition
    return None


def job_complete(job: Raw) -> bool:
    return job_condition(job, "Complete") is not None


def job_failed(job: Raw) -> Raw | None:
    """The Job's Failed condition (reason FailedIndexes, DeadlineExceeded, ...), if it failed."""
    return job_condition(job, "Failed") or job_condition(job, "FailureTarget")


def job_suspended(job: Raw) -> bool:
    return bool(_get(job, "spec", "suspend"))


def job_finished(job: Raw) -> bool:
    return job_complete(job) or job_failed(job) is not None


def failed_indexes(job: Raw) -> set[int]:
    """Indexes that failed past their retries, from ``status.failedIndexes`` ("1,3-5")."""
    return parse_index_ranges(_get(job, "status", "failedIndexes"))


def completed_indexes(job: Raw) -> set[int]:
    """Indexes that succeeded, from ``status.completedIndexes`` (kept by the Job after its pods are gone)."""
    return parse_index_ranges(_get(job, "status", "completedIndexes"))


@dataclass(frozen=True)
class PodState:
    """One task pod, reduced to what the rollup needs."""

    name: str
    step: Step
    index: int
    created: datetime
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    node: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    termination_message: str | None = None
    reason: str | None = None  # why it is not running: Unschedulable, ImagePullBackOff, Evicted, ...
    message: str | None = None
    deleting: bool = False
    earlier_attempts: int = 0  # pods of this task before this one, as the Job controller counted them

    @property
    def terminated(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def _task_container_status(pod: Raw) -> Raw:
    statuses: Sequence[Raw] = _get(pod, "status", "containerStatuses") or []
    for status in statuses:
        if status.get("name") == TASK_CONTAINER:
            return status
    return {}


def earlier_attempts(pod: Raw) -> int:
    """How many pods the Job controller had created for this pod's index before it (0 when unknown)."""
    total = 0
    for key in (FAILURE_COUNT_ANNOTATION, IGNORED_FAILURE_COUNT_ANNOTATION):
        try:
            total += max(0, int(_get(pod, "metadata", "annotations", key) or 0))
        except ValueError:
            continue
    return total


def pod_state(pod: Raw) -> PodState | None:
    """The task view of a pod, or None when it is not a task pod (no step or index)."""
    step = step_of(pod)
    raw_index = _get(pod, "metadata", "annotations", JOB_COMPLETION_INDEX) or _get(
        pod, "metadata", "labels", JOB_COMPLETION_INDEX
    )
    if step is None or raw_index is None:
        return None
    try:
        index = int(raw_index)
    except ValueError:
        return None
    phase = _get(pod, "status", "phase") or "Pending"
    container = _task_container_status(pod)
    state = container.get("state") or {}
    running, terminated, waiting = state.get("running"), state.get("terminated"), state.get("waiting")
    started = parse_time((running or {}).get("startedAt")) or parse_time((terminated or {}).get("startedAt"))
    if started is None and phase in ("Running", "Succeeded", "Failed"):
        started = parse_time(_get(pod, "status", "startTime"))
    finished = parse_time((terminated or {}).get("finishedAt"))
    exit_code = terminated.get("exitCode") if terminated else None
    reason: str | None = None
    message: str | None = None
    if phase == "Pending":
        for condition in _get(pod, "status", "conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                reason = condition.get("reason") or "Unschedulable"
                message = condition.get("message")
        if waiting and waiting.get("reason"):
            reason, message = waiting.get("reason"), waiting.get("message")
    elif phase == "Failed" and terminated is None:
        reason, message = _get(pod, "status", "reason"), _get(pod, "status", "message")
    if phase in ("Succeeded", "Failed") and finished is None:
        finished = started
    return PodState(
        name=_get(pod, "metadata", "name") or "",
        step=step,
        index=index,
        created=parse_time(_get(pod, "metadata", "creationTimestamp")) or datetime.min.replace(tzinfo=UTC),
        phase=phase,
        node=_get(pod, "spec", "nodeName") or None,
        started=started,
        finished=finished,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        termination_message=(terminated or {}).get("message"),
        reason=reason,
        message=message,
        deleting=_get(pod, "metadata", "deletionTimestamp") is not None,
        earlier_attempts=earlier_attempts(pod),
    )


def owned_jobs(jobs: Sequence[Raw], evaluation_uid: str) -> dict[Step, Raw]:
    """The Jobs the Evaluation (this incarnation, by uid) owns, by step."""
    owned: dict[Step, Raw] = {}
    for job in jobs:
        owners = _get(job, "metadata", "ownerReferences") or []
        if not any(ref.get("uid") == evaluation_uid for ref in owners):
            continue
        step = step_of(job)
        if step is not None:
            owned[step] = job
    return owned


def pods_of(pods: Sequence[Raw], jobs: Mapping[Step, Raw]) -> list[PodState]:
    """Task pods created by the given Jobs (matched by the Job uid Kubernetes labels them with)."""
    job_uids = {_get(job, "metadata", "uid") for job in jobs.values()}
    states = []
    for pod in pods:
        if _get(pod, "metadata", "labels", CONTROLLER_UID_LABEL) not in job_uids:
            continue
        state = pod_state(pod)
        if state is not None:
            states.append(state)
    return sorted(states, key=lambda p: (p.step.value, p.index, p.created, p.name))
