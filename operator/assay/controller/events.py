"""Kubernetes Events: the rollup's notices posted through kopf (batched and retried by kopf's poster).

A poster is passed to the writers that post, so their unit tests can see the notices without kopf running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf

from assay.rollup.notices import Notice

EventPoster = Callable[[Mapping[str, Any], Notice], None]


def post_event(body: Mapping[str, Any], notice: Notice) -> None:
    """Post ``notice`` as an Event about the object ``body``."""
    kopf.event(
        kopf.Body(cast(Any, dict(body))), type=notice.type, reason=notice.reason, message=notice.message
    )
