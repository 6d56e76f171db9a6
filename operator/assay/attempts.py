"""Task attempts of an evaluation, read from its pods (pure functions over raw pod dicts).

The operator's status keeps one entry per task (its latest attempt and a count); the pods keep the detail of
every attempt while they exist. Pods carry the labels ``assay.dev/evaluation`` and ``assay.dev/step``, and
the Indexed Job's completion index in an annotation. Attempts of one task are numbered by creation time; when
earlier pods are already gone, the numbers count back from the status' attempt count, or up from the Job
controller's count of the pods it replaced, so that "attempt 2" always means the second try. A failed attempt
gives the reason the task's status gives (what the runner reported, e.g. ``HandlerFailed``), not the
container's generic ``Error``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from assay.api import ApiModel, Timestamp
from assay.contract import TASK_CONTAINER
from assay.errors import Invalid, NotFound
from assay.render.names import JOB_COMPLETION_INDEX, LABEL_STEP, evaluation_selector

# The Job controller writes the index as an annotation and (Kubernetes 1.28+) as a label of the same name.
ANNOTATION_COMPLETION_INDEX = JOB_COMPLETION_INDEX
LABEL_COMPLETION_INDEX = JOB_COMPLETION_INDEX


class TaskAttempt(ApiModel):
    """One pod of one task (camelCase in JSON, like the API objects: ``to_api()``)."""

    step: str
    index: int
    attempt: int  # 1-based
    pod: str
    phase: str = ""
    node: str | None = None
    created: Timestamp | None = None
    start_time: Timestamp | None = None
    completion_time: Timestamp | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    container: str | None = None  # the container whose logs are the task's logs

    @property
    def task(self) -> str:
        return f"{self.step}/{self.index}"


def evaluation_pod_selector(evaluation: str) -> str:
    """The label selector of the Evaluation's pods (the operator's own rule for long names)."""
    return evaluation_selector(evaluation)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _task_container(pod: Mapping[str, Any]) -> str | None:
    names = [c.get("name", "") for c in pod.get("spec", {}).get("containers", [])]
    if TASK_CONTAINER in names:
        return TASK_CONTAINER
    return names[0] if names else None


def _pod_index(pod: Mapping[str, Any]) -> int:
    meta = pod.get("metadata", {})
    raw = (meta.get("annotations") or {}).get(ANNOTATION_COMPLETION_INDEX)
    if raw is None:
        raw = (meta.get("labels") or {}).get(LABEL_COMPLETION_INDEX, "0")
    try:
        return int(raw)
    except ValueError:
        return 0


def _terminated_state(pod: Mapping[str, Any], container: str | None) -> Mapping[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == container:
            state = status.get("state") or {}
            return state.get("terminated") or {}
    return {}


def attempts_from_pods(
    pods: Iterable[Mapping[str, Any]],
    attempt_counts: Mapping[tuple[str, int], int] | None = None,
) -> list[TaskAttempt]:
    """Every attempt the pods show, ordered by step, index and attempt.

    ``attempt_counts`` maps (step, index) to the attempt count in the evaluation's status, so that numbering
    stays right after the Job controller removed earlier pods.
    """
    # Imported here: the assay.rollup package is the operator's, and `assay list`/`get` start without it.
    from assay.rollup.observed import earlier_attempts, pod_state
    from assay.rollup.tasks import failure_of

    by_task: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for pod in pods:
        labels = pod.get("metadata", {}).get("labels") or {}
        step = labels.get(LABEL_STEP, "")
        by_task[(step, _pod_index(pod))].append(pod)

    attempts: list[TaskAttempt] = []
    for (step, index), task_pods in sorted(by_task.items()):
        task_pods.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        known = (attempt_counts or {}).get((step, index), 0)
        first_number = max(1, known - len(task_pods) + 1)
        for offset, pod in enumerate(task_pods):
            container = _task_container(pod)
            terminated = _terminated_state(pod, container)
            status = pod.get("status", {})
            reason = terminated.get("reason") or status.get("reason")
            message = terminated.get("message") or status.get("message")
            state = pod_state(pod) if status.get("phase") == "Failed" else None
            if state is not None:
                reason, message = failure_of(state)
            attempts.append(
                TaskAttempt(
                    step=step,
                    index=index,
                    attempt=max(first_number + offset, earlier_attempts(pod) + 1),
                    pod=pod["metadata"]["name"],
                    phase=status.get("phase", ""),
                    node=pod.get("spec", {}).get("nodeName"),
                    created=_parse_time(pod["metadata"].get("creationTimestamp")),
                    start_time=_parse_time(status.get("startTime")),
                    completion_time=_parse_time(terminated.get("finishedAt")),
                    exit_code=terminated.get("exitCode"),
                    reason=reason,
                    message=message,
                    container=container,
                )
            )
    return attempts


def select_attempts(
    attempts: Sequence[TaskAttempt],
    *,
    step: str | None = None,
    task: int | None = None,
    attempt: int | None = None,
) -> list[TaskAttempt]:
    """The attempts ``assay logs`` shows: filtered by step and task index; the latest attempt of each task
    unless ``attempt`` names one. Raises :class:`NotFound` with what exists when nothing matches."""
    if not attempts:
        raise NotFound("no task pods exist for this evaluation (not started yet, or already cleaned up)")
    chosen = [a for a in attempts if (step is None or a.step == step) and (task is None or a.index == task)]
    if not chosen:
        available = ", ".join(sorted({a.task for a in attempts}))
        wanted = f"{step or '*'}/{'*' if task is None else task}"
        raise NotFound(f"no task {wanted}; tasks with pods: {available}")
    if attempt is not None:
        matching = [a for a in chosen if a.attempt == attempt]
        if not matching:
            numbers = ", ".join(str(a.attempt) for a in chosen)
            raise NotFound(f"no attempt {attempt} among the remaining pods (attempts there: {numbers})")
        return matching
    latest: dict[tuple[str, int], TaskAttempt] = {}
    for a in chosen:
        latest[(a.step, a.index)] = a  # ordered by attempt, so the last one wins
    return list(latest.values())


def single_attempt(attempts: Sequence[TaskAttempt]) -> TaskAttempt:
    """The one attempt of a selection, or an :class:`Invalid` that lists how to narrow it down."""
    if len(attempts) == 1:
        return attempts[0]
    tasks = ", ".join(a.task for a in attempts)
    raise Invalid(f"{len(attempts)} tasks match ({tasks}); pick one with --step and --task")
