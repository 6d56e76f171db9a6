"""The validating admission handlers: Evaluations against their pool, EvaluationSets against themselves.

Each refuses with HTTP 422 and a message that names the field and the fix; the controller checks the same
again, for clusters without the webhook (condition Accepted=False). :func:`register` puts them into a kopf
registry (:func:`assay.controller.kopf_handlers.build_registry` for the operator). kopf serves each at
``/<its id>``, the path manifests/base/webhook.yaml names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import kopf
from pydantic import BaseModel, ValidationError

from assay.admission import check_evaluation_update, describe
from assay.api import (
    EVALUATION_PLURAL,
    EVALUATION_SET_PLURAL,
    GROUP,
    VERSION,
    EvaluationSetSpec,
    EvaluationSpec,
)
from assay.controller.admission.reads import evaluation_problems, find_pool
from assay.controller.indexes import PoolIndex
from assay.controller.kube import Cluster
from assay.controller.metrics import count_admission_rejection
from assay.rollup.evaluation_set import set_problems

WEBHOOK_ID = "evaluation.assay.dev"
SET_WEBHOOK_ID = "evaluationset.assay.dev"
# The apiserver sends the webhook only what it checks: creations, and updates that change
# autoReleaseSeconds (the one mutable field it checks; see validate_evaluation). Suspend, cancel, labels and
# finalizers never reach it, so they keep working while every operator is down (failurePolicy Fail).
# manifests/base/webhook.yaml carries the same condition.
WEBHOOK_MATCH_CONDITIONS: list[dict[str, str]] = [
    {
        "name": "creations-and-auto-release-changes",
        "expression": "request.operation == 'CREATE' || "
        "(has(object.spec.autoReleaseSeconds) ? object.spec.autoReleaseSeconds : -1) != "
        "(has(oldObject.spec.autoReleaseSeconds) ? oldObject.spec.autoReleaseSeconds : -1)",
    }
]

Spec = TypeVar("Spec", bound=BaseModel)


def register(registry: kopf.OperatorRegistry, *, labels: Mapping[str, str] | None = None) -> None:
    """Add both handlers to ``registry``; ``labels`` limits them to objects so labelled."""
    kopf.on.validate(
        GROUP, VERSION, EVALUATION_PLURAL, id=WEBHOOK_ID, operations=["CREATE", "UPDATE"],
        labels=labels, registry=registry,
    )(validate_evaluation)  # fmt: skip
    kopf.on.validate(
        GROUP, VERSION, EVALUATION_SET_PLURAL, id=SET_WEBHOOK_ID, operations=["CREATE"],
        labels=labels, registry=registry,
    )(validate_evaluation_set)  # fmt: skip


async def validate_evaluation(
    *,
    body: kopf.Body,
    namespace: str | None,
    memo: Any,
    old: kopf.Body | None = None,
    operation: str | None = None,
    pools_by_name: PoolIndex | None = None,
    **_: Any,
) -> None:
    """Refuse an Evaluation that cannot run in its pool; the message names the field and the fix.

    Its reads go through ``memo.cluster``, the operator's one :class:`~assay.controller.kube.Cluster`.
    """
    cluster: Cluster = memo.cluster
    spec = _spec_of(EvaluationSpec, body)
    if operation == "UPDATE":
        old_spec = _spec_of(EvaluationSpec, old)
        if old_spec.auto_release_seconds == spec.auto_release_seconds:
            return  # suspend, cancel, finalizers, labels: nothing the webhook checks
        pool = await find_pool(cluster, pools_by_name, spec.pool)
        problems = check_evaluation_update(old_spec, spec, pool=pool)
    else:
        pool = await find_pool(cluster, pools_by_name, spec.pool)
        problems = await evaluation_problems(cluster, spec, namespace or "", pool)
    if problems:
        for reason in {problem.reason for problem in problems}:
            count_admission_rejection(reason.value, by="webhook")
        raise kopf.AdmissionError(describe(problems), code=422)


async def validate_evaluation_set(*, body: kopf.Body, **_: Any) -> None:
    """Refuse a set the controller could not run (a combination that is no valid Evaluation, a baseline
    not in the matrix, ...) with what to fix. Creations only: template, matrix and baseline are immutable
    by CEL."""
    problems = set_problems(_spec_of(EvaluationSetSpec, body))
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)


def _spec_of(model: type[Spec], body: Mapping[str, Any] | None) -> Spec:
    try:
        return model.model_validate(dict((body or {}).get("spec") or {}))
    except ValidationError as exc:  # the CRD schema runs first, so this means the two disagree
        raise kopf.AdmissionError(f"spec is not valid: {exc}", code=422) from exc
