"""Summary metrics: a handler's nested result flattened into ``a/b`` keys, Starwhale-style."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from assay.contract import Scalar


def plain(value: Any) -> Any:
    """numpy scalars and arrays (anything with ``item``/``tolist``) as plain Python values, recursively."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    for method in ("item", "tolist"):
        converter = getattr(value, method, None)
        if callable(converter):
            try:
                return plain(converter())
            except (TypeError, ValueError):
                continue
    return str(value)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Nested mappings become ``outer/inner`` keys, in the handler's order (put the headline metric first).

    Scalars are kept (NaN and infinities become None); lists and other non-scalar values are left to the
    full report, since a summary holds one value per key.
    """
    flat: dict[str, Scalar] = {}
    for key, raw in metrics.items():
        name = f"{prefix}{key}"
        value = plain(raw)
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{name}/"))
        elif isinstance(value, bool | int | float | str) or value is None:
            flat[name] = value
    return flat
