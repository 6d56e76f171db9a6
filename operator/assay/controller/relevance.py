"""Which watch events can change a reconcile's outcome.

Most events of a task pod or Job change nothing the rollup reads: a pod's IP and Ready condition, a Job's
``active``, ``ready`` and ``terminating`` counters. Those ask for no reconcile; the rest do. (An Evaluation's
own status write coming back is recognised by :meth:`EvaluationCache.is_echo`.)
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
