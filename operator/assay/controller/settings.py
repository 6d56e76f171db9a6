"""Operator settings: every knob an admin may want to turn, with its documented default.

Each setting can be overridden by an environment variable ``ASSAY_OPERATOR_<NAME>`` (upper case) or by the
``assay-operator`` command line; :func:`OperatorSettings.from_env` reads the variables.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from assay.contract import MIN_DEBUG_PASSWORD_LENGTH

ENV_PREFIX = "ASSAY_OPERATOR_"
EVENT_LOOPS = frozenset({"uvloop", "asyncio"})


@dataclass(frozen=True)
class OperatorSettings:
    """How the operator behaves; the defaults suit a production cluster."""

    # Image of task pods when an Evaluation's runtime names none.
    default_runtime_image: str = "assay-runtime:latest"
    # Command of the task container (the runner); empty = the image's entrypoint. Comma-separated in the env.
    runner_command: tuple[str, ...] = ("python", "-m", "assay.runner")
    # Auto-release when neither the Evaluation nor its pool sets one (seconds from the first task's start).
    default_auto_release_seconds: int = 3600
    # Finished Jobs (and their pods, logs) are kept this long, then Kubernetes deletes them
    # (Job ttlSecondsAfterFinished). The Evaluation and its status stay.
    job_retention_seconds: int = 3600
    # Added to a Job's activeDeadlineSeconds beyond the auto-release time: the Job deadline is only the
    # backstop for an operator that is down; the operator's own timer releases at the exact time.
    job_deadline_grace_seconds: int = 60
    # An Evaluation is reconciled at most once per this window: the first event after a quiet spell at
    # once (a new Evaluation gets its Job without delay), the events within the window after it in one
    # reconcile at its end. 0.1 s folded almost nothing (an Evaluation's pod events come seconds apart):
    # 59 reconciles per Evaluation of 8 tasks in the benchmark.
    reconcile_batch_seconds: float = 0.5
    # A status change that is only progress (task entries, counts, cost, message, start and expiry, the
    # Running and Scheduled conditions) is written at most this often per Evaluation;
    # phase, results and the other conditions are always written at once. 0 = no per-Evaluation bound.
    status_detail_interval_seconds: float = 5.0
    # ... or this fraction of the Evaluation's age when that is longer (up to the maximum below), so that the
    # progress writes are bounded per lifetime too (an hour-long Evaluation: about 85, not 720).
    status_detail_interval_age_fraction: float = 0.1
    status_detail_interval_max_seconds: float = 60.0
    # ... and at most this many progress writes per second for the whole operator, so that thousands of
    # running Evaluations do not flood the apiserver (each then gets its progress written less often).
    # 0 = no operator-wide bound. See assay.controller.pacing. A half still gives each of 30 running
    # Evaluations fresh progress every minute. In a burst this budget, not the per-Evaluation bounds, sets
    # the progress writes: at 1 a second each of tier M's 1,000 Evaluations (a 630 s burst) got 0.59 of
    # them, 2.59 status writes in all, with the age bound as without it.
    status_progress_writes_per_second: float = 0.5
    # A pool's status (capacity, in use, queue) is recomputed at most this often, however many of its
    # Evaluations change meanwhile; the first change after a quiet spell is counted at once.
    pool_status_interval_seconds: float = 1.0
    # At most this many Evaluations are reconciled at once (a controller's workers); the others wait, as
    # keys, in request order. Unbounded, a burst of 2,500 new Evaluations held hundreds of reconciles in
    # flight at once, each with its object, plan and request, all waiting on the same two cores.
    concurrent_reconciles: int = 16
    # At most this many API requests of the controller in flight (its client's connection pool; the
    # client's default, 100, opened a TLS connection with its buffers for each, to no gain in speed: with
    # 5,000 live Evaluations the operator held 166.5 MiB, 153.2 with 16).
    api_connections: int = 16
    # Delay before retrying a reconcile that hit an API error (seconds, doubled per failure up to the max).
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    # Where pvc:// locations are mounted inside task pods.
    pvc_root: str = "/assay/volumes"
    # Port of the debug server inside task pods, exposed by the debug Service.
    debug_port: int = 8000
    # Length (characters) of generated debug passwords; at least the contract's MIN_DEBUG_PASSWORD_LENGTH.
    debug_password_length: int = 24
    # Namespaces to watch; empty = all namespaces (cluster-wide).
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    # The event loop: "uvloop" (libuv) or "asyncio" (Python's own).
    event_loop: str = "uvloop"
    # Decode watch events with orjson rather than the standard json module (assay.controller.fastjson).
    fast_json: bool = True
    # Freeze start-up's objects and run full garbage collections less often (assay.controller.gc_tuning).
    tune_gc: bool = True

    def __post_init__(self) -> None:
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(
                f"{ENV_PREFIX}EVENT_LOOP={self.event_loop!r}: choose one of {', '.join(sorted(EVENT_LOOPS))}"
            )
        for name in ("concurrent_reconciles", "api_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{ENV_PREFIX}{name.upper()}={getattr(self, name)}: at least 1")
        if self.debug_password_length < MIN_DEBUG_PASSWORD_LENGTH:
            raise ValueError(
                f"{ENV_PREFIX}DEBUG_PASSWORD_LENGTH={self.debug_password_length}: generated debug passwords "
                f"need at least {MIN_DEBUG_PASSWORD_LENGTH} characters (what admission asks of a user's)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Defaults overridden by ``ASSAY_OPERATOR_*`` variables; a bad value raises naming the variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = environ.get(name)
            default = getattr(cls(), f.name)
            if raw is None or (raw == "" and not isinstance(default, tuple)):
                continue  # an empty list is meaningful (e.g. no runner command: the image's entrypoint)
            try:
                if isinstance(default, bool):
                    values[f.name] = raw.strip().lower() in {"1", "true", "yes"}
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                elif isinstance(default, tuple):
                    values[f.name] = tuple(part.strip() for part in raw.split(",") if part.strip())
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a valid {type(default).__name__}") from exc
        return cls(**values)  # type: ignore[arg-type]  # each value parsed to its field's default's type
