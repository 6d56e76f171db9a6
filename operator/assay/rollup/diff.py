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
