"""The one status write: the merge patch from the stored status to the desired one, or nothing. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from assay.api import ApiModel


def status_changes(current: Mapping[str, Any] | None, desired: ApiModel) -> dict[str, Any] | None:
    """The JSON merge patch turning the stored status into ``desired``; None when they are equal.

    Both sides are compared in the model's normal form, so defaults the apiserver filled in, or a field
    stored as absent rather than empty, never count as a change (which would mean a write on every event).
    Stored fields the model does not produce are removed (set to null).
    """
    raw = dict(current or {})
    wanted = desired.to_api()
    try:
        stored = type(desired).model_validate(raw).to_api()
    except ValidationError:
        stored = {}  # unreadable: rewrite it whole
    patch: dict[str, Any] = {key: value for key, value in wanted.items() if stored.get(key) != value}
    for key in raw:
        if key not in wanted:
            patch[key] = None
    return patch or None


# What follows every pod transition. A change of only these may wait (the controller paces progress
# writes, see assay.controller.pacing); phase, observed generation, results, the queue position and every
# other condition are written at once.
PROGRESS_FIELDS = frozenset(
    {"tasks", "succeededTasks", "taskCounts", "progress", "cost", "message", "startTime", "expiresAt"}
)
# Scheduled too: in a busy pool pods wait for GPUs as Unschedulable again and again, and writing each
# flip at once made the status writes grow with the pool's load.
PROGRESS_CONDITIONS = frozenset({"Running", "Scheduled"})


def is_progress_only(stored: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> bool:
    """True when ``patch`` (from :func:`status_changes`) changes only progress: per-task detail, counts,
    cost, the message, the start and expiry times, and the Running and Scheduled conditions."""
    for key, value in patch.items():
        if key in PROGRESS_FIELDS:
            continue
        if key == "conditions" and _lasting(value) == _lasting((stored or {}).get("conditions")):
            continue
        return False
    return True


def _lasting(conditions: Any) -> list[Any]:
    """The conditions that are not progress (Accepted, Queued, Suspended, the terminal ones...)."""
    return [
        c for c in conditions or [] if not isinstance(c, Mapping) or c.get("type") not in PROGRESS_CONDITIONS
    ]
