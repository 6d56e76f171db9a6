"""Watch events decoded with orjson instead of the standard ``json`` module, without managedFields.

kopf decodes every line of every watch stream with ``json.loads`` (a fifth of the operator's CPU in the
benchmark's profile); orjson decodes a task pod's event in half the time. kopf has no hook for it, so the
``json`` name its API client module uses is replaced by a copy of the module whose ``loads`` is ours.
That reaches into kopf's internals: kopf is pinned (constraints.txt), and a unit test fails when the
decoding line it relies on changes.

The operator never reads an object's ``metadata.managedFields`` (a third of a task pod), yet kopf queues
each event whole until the object's worker takes it: under a burst tens of thousands of them wait at once.
So they are dropped as soon as the event is decoded.
"""

from __future__ import annotations

import json
import types
from typing import Any

import orjson
from kopf._cogs.clients import api as kopf_api


def loads(data: str | bytes) -> Any:
    """A watch event, decoded by orjson (what orjson refuses and ``json`` accepts, NaN or Infinity, by
    ``json``), its object's managedFields dropped."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        event = json.loads(data)
    if isinstance(event, dict):
        obj = event.get("object")
        if isinstance(obj, dict):
            metadata = obj.get("metadata")
            if isinstance(metadata, dict):
                metadata.pop("managedFields", None)
    return event


def install() -> None:
    """Make kopf's watch streams decode with :func:`loads` (idempotent)."""
    current = getattr(kopf_api, "json", None)
    if not isinstance(current, types.ModuleType) or not callable(getattr(current, "loads", None)):
        raise RuntimeError(
            "kopf's API client no longer decodes with a `json` module: see assay.controller.fastjson"
        )
    fast = types.ModuleType("json", "the json module, with orjson's loads (assay.controller.fastjson)")
    fast.__dict__.update({k: v for k, v in json.__dict__.items() if not k.startswith("__")}, loads=loads)
    kopf_api.json = fast  # type: ignore[attr-defined]  # kopf's own `import json`, replaced on purpose


def installed() -> bool:
    return getattr(getattr(kopf_api, "json", None), "loads", None) is loads
