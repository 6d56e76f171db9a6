"""Builds the context a phase rule of ``assay.rollup.rules`` reads, from the raw objects of test_rollup."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from test_rollup_evaluation import POOL, T0

from assay.api import ConditionType, Evaluation, ResourcePool, find_condition
from assay.render.jobs import RenderOptions
from assay.rollup import Acceptance, CreateRefusal, Observation, QueueVerdict, owned_jobs, pods_of
from assay.rollup.rules.context import AcceptedContext, Conditions, PlanContext

ACCEPTED = Acceptance(accepted=True)
ADMITTED = QueueVerdict(admitted=True)


def context(
    ev: Evaluation,
    jobs: list[dict[str, Any]] | tuple[()] = (),
    pods: list[dict[str, Any]] | tuple[()] = (),
    *,
    now: float = 60,
    acceptance: Acceptance = ACCEPTED,
    queue: QueueVerdict = ADMITTED,
    refused: CreateRefusal | None = None,
    pool: ResourcePool | None = POOL,
) -> PlanContext:
    owned = owned_jobs(list(jobs), "ev-uid")
    moment = T0 + timedelta(seconds=now)
    return PlanContext(
        evaluation=ev,
        pool=pool,
        observation=Observation(jobs=owned, pods=pods_of(list(pods), owned), refused=refused),
        acceptance=acceptance,
        queue=queue,
        now=moment,
        options=RenderOptions(),
        conditions=Conditions(ev, moment),
    )


def accepted(ev: Evaluation, *args: Any, **kwargs: Any) -> AcceptedContext:
    """The context of the rules after admission (the Evaluation's lifetime known)."""
    return context(ev, *args, **kwargs).accepted()


def recorded(ctx: PlanContext, type_: ConditionType) -> tuple[str, str, str] | None:
    """(status, reason, message) of a condition the rules recorded so far."""
    c = find_condition(ctx.conditions.conditions, type_.value)
    return (c.status.value, c.reason, c.message) if c else None
