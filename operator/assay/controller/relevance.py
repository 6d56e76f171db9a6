"""Which watch events can change a reconcile's outcome.

Most events of a task pod or Job change nothing the rollup reads: a pod's IP and Ready condition, a Job's
``active``, ``ready`` and ``terminating`` counters. Those ask for no reconcile; the rest do. (An Evaluation's
own status write coming back is recognised by :meth:`EvaluationCache.is_echo`.)

Of the pod events that do change something, those of a pod still on its way to running (created, given a
node, its containers being created) change only the Evaluation's progress: task entries, counts, the
Scheduled condition (:func:`pod_on_its_way`). Progress is written paced, so such an event waits for the
progress write already planned, when there is one (``Controller.task_pod_changed``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from assay.controller.indexes import job_essentials, slim_pod
from assay.controller.kueue import slim_workload


class EventFilter:
    """Remembers, per object uid, a fingerprint of the last form the rollup reads."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def _changed(self, uid: str, form: Mapping[str, Any]) -> bool:
        fingerprint = hash(repr(form))
        if self._seen.get(uid) == fingerprint:
            return False
        self._seen[uid] = fingerprint
        return True

    def pod_changed(self, body: Mapping[str, Any], *, deleted: bool) -> bool:
        """Whether a task pod's event can change its Evaluation's status (a deletion always can)."""
        return self._object_changed(body, deleted, slim_pod)

    def job_changed(self, body: Mapping[str, Any], *, deleted: bool) -> bool:
        """Whether a Job's event can change its Evaluation's status (a deletion always can)."""
        return self._object_changed(body, deleted, job_essentials)

    def workload_changed(self, body: Mapping[str, Any], *, deleted: bool) -> bool:
        """Whether a Kueue Workload's event can change its Evaluation's status (Kueue rewrites others)."""
        return self._object_changed(body, deleted, slim_workload)

    def _object_changed(
        self, body: Mapping[str, Any], deleted: bool, form: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    ) -> bool:
        uid = (body.get("metadata") or {}).get("uid") or ""
        if deleted or not uid:
            self._seen.pop(uid, None)
            return True
        return self._changed(uid, form(body))

    def __len__(self) -> int:
        return len(self._seen)


# Waiting reasons of a container that is being started as it should (any other is reported at once).
STARTING = frozenset({"ContainerCreating", "PodInitializing"})


def pod_on_its_way(body: Mapping[str, Any]) -> bool:
    """Whether a task pod is pending on its way to running: not yet scheduled, or scheduled with its
    containers being created. Such a pod changes only progress. A running pod is not on its way: its start
    starts the auto-release clock. Nor is a pod the scheduler could not place, one whose container waits
    for a reason (an image that cannot be pulled, a missing Secret), or one the kubelet gave a reason
    (evicted), finished or being deleted: those may change the outcome, and are reconciled at once."""
    status = body.get("status") or {}
    if (
        status.get("phase") != "Pending"
        or status.get("reason")
        or body.get("metadata", {}).get("deletionTimestamp")
    ):
        return False
    if any(
        c.get("type") == "PodScheduled" and c.get("status") == "False" for c in status.get("conditions") or []
    ):
        return False
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state = container.get("state") or {}
        if "running" in state or "terminated" in state:
            return False
        waiting = state.get("waiting")
        if waiting is not None and waiting.get("reason") not in STARTING:
            return False
    return True
