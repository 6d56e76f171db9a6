"""What every phase rule reads, and the one way a rule writes a status.

A :class:`PlanContext` is built once per :func:`~assay.rollup.evaluation.plan_evaluation` call. Its
:class:`Conditions` are shared by the rules in turn: a rule that does not apply may still record its
verdict there (admission marks Accepted, quota marks Admitted), and the rule that decides carries it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from assay.api import (
    Condition,
    ConditionType,
    Cost,
    DebugStatus,
    Evaluation,
    EvaluationSpec,
    EvaluationStatus,
    Phase,
    ResourcePool,
    find_condition,
    set_condition,
)
from assay.api.resources import effective_auto_release_seconds
from assay.contract import Step
from assay.render.debug import debug_enabled
from assay.render.jobs import RenderOptions, debug_password_secret
from assay.render.names import debug_name
from assay.rollup.cost import cost_of
from assay.rollup.observed import PodState, Raw
from assay.rollup.plan import Acceptance, Observation, QueueVerdict
from assay.rollup.tasks import TaskRollup, roll_up_tasks

# Status fields a plan never copies from the stored status: the controller derives them on writing.
DERIVED_FIELDS = ("progress", "headline")


class Conditions:
    """Accumulates conditions with the evaluation's generation and the plan's clock."""

    def __init__(self, evaluation: Evaluation, now: datetime) -> None:
        self.conditions: list[Condition] = list(evaluation.status.conditions)
        self.generation = evaluation.metadata.generation
        self.now = now

    def set(self, type_: ConditionType, status: bool, reason: str, message: str = "") -> None:
        self.conditions = set_condition(
            self.conditions,
            type_.value,
            status,
            reason,
            message,
            now=self.now,
            observed_generation=self.generation,
        )

    def clear(self, type_: ConditionType, reason: str, message: str = "") -> None:
        """Set to False only if present: conditions that never applied stay absent."""
        if find_condition(self.conditions, type_.value) is not None:
            self.set(type_, False, reason, message)


def first_task_start(evaluation: Evaluation, pods: Sequence[PodState]) -> datetime | None:
    """When the first task started (auto-release counts from here); fixed once known."""
    if evaluation.status.start_time is not None:
        return evaluation.status.start_time
    starts = [p.started for p in pods if p.started is not None]
    return min(starts) if starts else None


@dataclass(frozen=True)
class Lifetime:
    """What an accepted Evaluation's statuses carry from here on: when its first task started, when it
    expires (auto-release) and, for a debug run, where to reach it."""

    release_seconds: int
    start_time: datetime | None
    expires_at: datetime | None
    debug: DebugStatus | None

    @classmethod
    def of(
        cls,
        evaluation: Evaluation,
        pool: ResourcePool | None,
        pods: Sequence[PodState],
        options: RenderOptions,
    ) -> Lifetime:
        release = effective_auto_release_seconds(evaluation.spec, pool)
        start_time = first_task_start(evaluation, pods)
        expires_at = None
        if start_time is not None and release > 0:
            expires_at = start_time + timedelta(seconds=release)
        debug = None
        if debug_enabled(evaluation):
            secret = debug_password_secret(evaluation)
            debug = DebugStatus(
                service=debug_name(evaluation.name),
                port=options.debug_port,
                password_secret=secret[0] if secret else None,
            )
        return cls(release_seconds=release, start_time=start_time, expires_at=expires_at, debug=debug)

    def status_fields(self) -> dict[str, object]:
        carried: dict[str, object] = {"start_time": self.start_time, "expires_at": self.expires_at}
        if self.debug is not None:  # otherwise the stored one stays
            carried["debug"] = self.debug
        return carried


@dataclass(frozen=True)
class PlanContext:
    """Everything observed about one Evaluation, and the conditions the rules have recorded so far."""

    evaluation: Evaluation
    pool: ResourcePool | None
    observation: Observation
    acceptance: Acceptance
    queue: QueueVerdict
    now: datetime
    options: RenderOptions
    conditions: Conditions

    @property
    def spec(self) -> EvaluationSpec:
        return self.evaluation.spec

    @property
    def current(self) -> EvaluationStatus:
        return self.evaluation.status

    @property
    def jobs(self) -> Mapping[Step, Raw]:
        return self.observation.jobs

    @property
    def pods(self) -> Sequence[PodState]:
        return self.observation.pods

    def tasks(self, *, stopped: bool) -> TaskRollup:
        return roll_up_tasks(self.evaluation, self.jobs, self.pods, stopped=stopped)

    def cost(self, tasks: TaskRollup, until: datetime | None = None) -> Cost | None:
        return cost_of(self.evaluation, self.pool, tasks, self.pods, until)

    def carried(self) -> dict[str, object]:
        """Status fields this stage of the plan sets on top of the stored status."""
        return {"observed_generation": self.evaluation.metadata.generation}

    def status(
        self, phase: Phase, message: str, tasks: TaskRollup | None = None, **extra: object
    ) -> EvaluationStatus:
        """The whole status in ``phase``: the stored one, with the conditions recorded so far, the tasks and
        ``extra`` (cost, results, queue position) on top."""
        current = self.current
        values: dict[str, object] = {
            **{k: getattr(current, k) for k in EvaluationStatus.model_fields if k not in DERIVED_FIELDS},
            **self.carried(),
            "phase": phase,
            "message": message,
            "conditions": self.conditions.conditions,
        }
        if tasks is not None:
            values["tasks"] = tasks.listed
            values["succeeded_tasks"] = tasks.succeeded
            values["task_counts"] = tasks.counts
        if phase != Phase.QUEUED:
            values["queue_position"] = None
        if phase.is_terminal:
            values["completion_time"] = self.now
        values.update(extra)
        return EvaluationStatus.model_validate(values)

    def accepted(self) -> AcceptedContext:
        """This context once admission let the Evaluation on: its statuses carry its :class:`Lifetime`."""
        lifetime = Lifetime.of(self.evaluation, self.pool, self.pods, self.options)
        return AcceptedContext(**{f.name: getattr(self, f.name) for f in fields(self)}, lifetime=lifetime)


@dataclass(frozen=True)
class AcceptedContext(PlanContext):
    """The context of the rules after admission."""

    lifetime: Lifetime

    def carried(self) -> dict[str, object]:
        return {**super().carried(), **self.lifetime.status_fields()}
