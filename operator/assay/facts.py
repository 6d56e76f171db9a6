"""What people want to know about an evaluation at a glance, derived from the typed model (pure).

``sys/*`` facts follow Starwhale's naming: flat keys, one per fact, so that ``assay get`` and
``assay compare`` show the same names and ``--columns sys/duration`` works.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from assay.api import Evaluation, Phase
from assay.compare import Subject, Value
from assay.contract import task_slots


def phase_of(evaluation: Evaluation) -> str:
    """The phase, or Pending before the operator wrote any status."""
    phase = evaluation.status.phase
    return phase.value if phase is not None else Phase.PENDING.value


def is_terminal(evaluation: Evaluation) -> bool:
    phase = evaluation.status.phase
    return phase is not None and phase.is_terminal


def duration(evaluation: Evaluation, now: datetime | None = None) -> timedelta | None:
    """From the first task start to completion (or to ``now`` while still running)."""
    status = evaluation.status
    if status.start_time is None:
        return None
    end = status.completion_time
    if end is None:
        if is_terminal(evaluation):
            return None
        end = now or datetime.now(UTC)
    return end - status.start_time


def summary(evaluation: Evaluation) -> dict[str, Value]:
    results = evaluation.status.results
    return dict(results.summary) if results is not None else {}


def headline_metric(evaluation: Evaluation) -> tuple[str, Value] | None:
    """The one metric a listing shows: the summary's first, as kubectl's printer column does."""
    metrics = summary(evaluation)
    if not metrics:
        return None
    first = next(iter(metrics))
    return first, metrics[first]


def tasks_done(evaluation: Evaluation) -> tuple[int, int]:
    """(succeeded, total) tasks; before the operator counted them, total is the layout's task count."""
    counts = evaluation.status.task_counts
    if counts is not None and counts.total:
        return counts.succeeded, counts.total
    return 0, len(task_slots(evaluation.spec.tasks))


def cost_text(evaluation: Evaluation) -> str:
    """``1.27 / 40.00 USD``: accrued against the estimated maximum."""
    cost = evaluation.status.cost
    if cost is None:
        return ""
    accrued = str(cost.accrued) if cost.accrued is not None else "0"
    currency = f" {cost.currency}" if cost.currency else ""
    if cost.estimated_max is not None:
        return f"{accrued} / {cost.estimated_max}{currency}"
    return f"{accrued}{currency}"


def created_with(evaluation: Evaluation) -> str | None:
    """The tool that created the evaluation, as its field manager (``kubectl-create``, ``assay``, ...).

    Kubernetes records no creating user on an object; it records which manager wrote each field. The
    model and dataset cannot change after creation (CEL), so whoever manages ``spec.model`` created it.
    """
    entries = (evaluation.metadata.model_extra or {}).get("managedFields") or []
    for entry in entries:
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:model" in spec and not entry.get("subresource") and entry.get("manager"):
            return str(entry["manager"])
    return None


def debug_hint(evaluation: Evaluation) -> str | None:
    """How to reach the debug server: a port-forward command and the Secret holding the password."""
    debug = evaluation.status.debug
    if debug is None or not debug.service:
        return None
    namespace = evaluation.metadata.namespace
    ns_flag = f" -n {namespace}" if namespace else ""
    hint = f"kubectl port-forward{ns_flag} svc/{debug.service} {debug.port}"
    if debug.password_secret:
        hint += f"  (password: Secret {debug.password_secret})"
    return hint


def sys_facts(evaluation: Evaluation, now: datetime | None = None) -> dict[str, Value]:
    """The ``sys/*`` facts of an evaluation, in display order; absent facts are None."""
    spec = evaluation.spec
    status = evaluation.status
    meta = evaluation.metadata
    spent = duration(evaluation, now)
    created = meta.creation_timestamp
    finished = status.completion_time
    debug = status.debug
    model = spec.model
    dataset = spec.dataset
    runtime = spec.runtime
    done, total = tasks_done(evaluation)
    records = status.results.records if status.results is not None else None
    return {
        "sys/id": meta.uid,
        "sys/model": model.name,
        "sys/model_version": model.version,
        "sys/dataset": dataset.name,
        "sys/dataset_version": dataset.version,
        "sys/runtime": (runtime.name or runtime.image) if runtime is not None else None,
        "sys/runtime_version": runtime.version if runtime is not None else None,
        "sys/pool": spec.pool,
        "sys/phase": phase_of(evaluation),
        "sys/tasks": f"{done}/{total}",
        "sys/records": records,
        "sys/cost": _decimal(status.cost.accrued) if status.cost is not None else None,
        "sys/created": format_time(created),
        "sys/finished": format_time(finished),
        "sys/duration": round(spent.total_seconds()) if spent is not None else None,
        "sys/debug": f"svc/{debug.service}:{debug.port}" if debug is not None and debug.service else None,
    }


def _decimal(text: str | None) -> float | None:
    # Cost amounts are decimal strings in the API; compare needs numbers for its deltas.
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def subject(evaluation: Evaluation, now: datetime | None = None) -> Subject:
    """An evaluation as :func:`assay.compare.compare` takes it: sys facts plus summary metrics."""
    facts: dict[str, Value] = {k: v for k, v in sys_facts(evaluation, now).items() if v is not None}
    facts.update(summary(evaluation))
    return Subject(
        name=evaluation.metadata.name or "",
        facts=facts,
        running=not is_terminal(evaluation),
        phase=phase_of(evaluation),
    )


def format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(value: timedelta | float | None) -> str:
    """kubectl-style short durations: 45s, 3m12s, 2h5m, 4d3h."""
    if value is None:
        return ""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds < 0:
        seconds = 0
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, mins = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{mins}m" if mins else f"{hours}h"
    days, hrs = divmod(hours, 24)
    return f"{days}d{hrs}h" if hrs else f"{days}d"


def age(created: datetime | None, now: datetime | None = None) -> str:
    if created is None:
        return ""
    return format_duration((now or datetime.now(UTC)) - created)
