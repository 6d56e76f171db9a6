"""Per-evaluation timings and their summaries (pure functions)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass
class EvalTimes:
    """Wall-clock instants (``time.time()``) in the life of one evaluation, as the benchmark saw them.

    ``created``: the create request of the evaluation's top object was sent (A0: its predict Job);
    ``create_returned``: its response arrived (admission webhooks included).
    ``job_created``: the watch delivered its predict Job. ``last_pod_done``: the watch delivered the last of
    its pods reaching Succeeded/Failed. ``finished``: the watch delivered the top object's final status
    (A0: the evaluate Job's Complete/Failed condition; A1: the JobSet's; A2: the Evaluation's terminal phase).
    """

    created: float | None = None
    create_returned: float | None = None
    job_created: float | None = None
    last_pod_done: float | None = None
    finished: float | None = None
    outcome: str | None = None
    pods_done: set[str] = field(default_factory=set)


def percentile(values: list[float], p: float) -> float | None:
    """Linear-interpolated percentile (``p`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(values: list[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {
        "p50_ms": r(percentile(values, 50)),
        "p99_ms": r(percentile(values, 99)),
        "max_ms": r(max(values) if values else None),
    }


def summarize(times: dict[str, EvalTimes]) -> dict[str, object]:
    """Total time, latency percentiles and outcome counts over every evaluation of an arm."""
    created = [t.created for t in times.values() if t.created is not None]
    finished = [t.finished for t in times.values() if t.finished is not None]
    create_request = [
        t.create_returned - t.created for t in times.values() if t.create_returned and t.created
    ]
    to_job = [t.job_created - t.created for t in times.values() if t.job_created and t.created]
    to_status = [t.finished - t.last_pod_done for t in times.values() if t.finished and t.last_pod_done]
    outcomes: dict[str, int] = {}
    for t in times.values():
        key = t.outcome or "unfinished"
        outcomes[key] = outcomes.get(key, 0) + 1
    total = max(finished) - min(created) if created and len(finished) == len(times) else None
    return {
        "evaluations": len(times),
        "finished": len(finished),
        "outcomes": outcomes,
        "total_s": None if total is None else round(total, 2),
        "create_window_s": round(max(created) - min(created), 2) if created else None,
        "create_request": _ms(create_request),
        "create_to_job": _ms(to_job),
        "last_pod_to_status": _ms([max(d, 0.0) for d in to_status]),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded, None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def spread(values: list[float]) -> dict[str, float | int] | None:
    """Median, min and max of one figure over the rounds of an arm; None when no round measured it."""
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }
