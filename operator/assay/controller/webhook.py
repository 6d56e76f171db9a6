"""The validating admission webhook for Evaluations, and the index of ResourcePools it reads.

Importing this module registers, with kopf's default registry:

* ``pools_by_name`` — a kopf index ``{pool name: ResourcePool}``; any handler may take it as a kwarg;
* ``validate_evaluation`` — rejects an Evaluation that cannot run in its pool (see :mod:`assay.admission`)
  with HTTP 422 and a message that says what to fix.

The API reads here (the pool when the index misses, the namespace's labels when the pool selects namespaces
by label, the debug Secret when one is named) use ``kubernetes_asyncio``'s default configuration, which the
operator loads at start-up.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from assay.admission import (
    Problem,
    check_evaluation_update,
    check_new_evaluation,
    describe,
    pool_needs_namespace_labels,
)
from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION, EvaluationSpec, ResourcePool
from assay.controller.metrics import count_admission_rejection

logger = logging.getLogger(__name__)

WEBHOOK_ID = "evaluation.assay.dev"
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
PoolIndex = kopf.Index[str, ResourcePool]


@kopf.index(GROUP, VERSION, POOL_PLURAL)
def pools_by_name(name: str, body: kopf.Body, **_: Any) -> dict[str, ResourcePool]:
    """Every ResourcePool by name, parsed (a pool the models cannot read is left out, with a warning)."""
    try:
        return {name: ResourcePool.model_validate(dict(body))}
    except ValidationError as exc:
        logger.warning("ResourcePool %s is not readable and is ignored: %s", name, exc)
        return {}


def pool_from_index(index: PoolIndex | None, name: str) -> ResourcePool | None:
    """The pool called ``name`` in the index, if the index has it."""
    store = index.get(name) if index is not None else None
    return next(iter(store), None) if store is not None else None


async def find_pool(index: PoolIndex | None, name: str) -> ResourcePool | None:
    """The pool called ``name``: from the index, else read from the API (the index may still be filling
    right after start-up; a missing pool must be really missing before an Evaluation is refused)."""
    if (pool := pool_from_index(index, name)) is not None:
        return pool
    async with client.ApiClient() as api:
        try:
            raw = await client.CustomObjectsApi(api).get_cluster_custom_object(
                GROUP, VERSION, POOL_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
    return ResourcePool.model_validate(raw)


async def _namespace_labels(api: client.ApiClient, namespace: str) -> Mapping[str, str] | None:
    try:
        found = await client.CoreV1Api(api).read_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(found.metadata.labels or {})


async def _secret_value_lengths(api: client.ApiClient, namespace: str, name: str) -> Mapping[str, int] | None:
    try:
        secret = await client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    # Only each key's length in characters is kept, for the minimum-length rule; no value leaves here.
    return {key: _characters(value) for key, value in (secret.data or {}).items()}


def _characters(encoded: str | None) -> int:
    # The apiserver stores valid base64; bytes that are not UTF-8 still count (as replacement characters).
    return len(base64.b64decode(encoded or "").decode("utf-8", errors="replace"))


async def evaluation_problems(
    spec: EvaluationSpec, namespace: str, pool: ResourcePool | None
) -> list[Problem]:
    """Gather what :func:`assay.admission.check_new_evaluation` needs from the API, then call it.

    The controller calls this too, for clusters without the webhook (condition Accepted=False).
    """
    labels: Mapping[str, str] | None = None
    secret_lengths: Mapping[str, int] | None = None
    secret_ref = spec.debug.password_secret_ref if spec.debug is not None else None
    if pool is not None and (pool_needs_namespace_labels(pool) or secret_ref is not None):
        async with client.ApiClient() as api:
            if pool_needs_namespace_labels(pool):
                labels = await _namespace_labels(api, namespace)
            if secret_ref is not None:
                secret_lengths = await _secret_value_lengths(api, namespace, secret_ref.name)
    return check_new_evaluation(
        spec, namespace=namespace, pool=pool, namespace_labels=labels, debug_secret_lengths=secret_lengths
    )


def _spec_of(body: Mapping[str, Any] | None) -> EvaluationSpec:
    try:
        return EvaluationSpec.model_validate(dict((body or {}).get("spec") or {}))
    except ValidationError as exc:  # the CRD schema runs first, so this means the two disagree
        raise kopf.AdmissionError(f"spec is not valid: {exc}", code=422) from exc


@kopf.on.validate(GROUP, VERSION, EVALUATION_PLURAL, id=WEBHOOK_ID, operations=["CREATE", "UPDATE"])
async def validate_evaluation(
    *,
    body: kopf.Body,
    namespace: str | None,
    old: kopf.Body | None = None,
    operation: str | None = None,
    pools_by_name: PoolIndex | None = None,
    **_: Any,
) -> None:
    """Refuse an Evaluation that cannot run in its pool; the message names the field and the fix."""
    spec = _spec_of(body)
    if operation == "UPDATE":
        old_spec = _spec_of(old)
        if old_spec.auto_release_seconds == spec.auto_release_seconds:
            return  # suspend, cancel, finalizers, labels: nothing the webhook checks
        problems = check_evaluation_update(old_spec, spec, pool=await find_pool(pools_by_name, spec.pool))
    else:
        pool = await find_pool(pools_by_name, spec.pool)
        problems = await evaluation_problems(spec, namespace or "", pool)
    if problems:
        for reason in {problem.reason for problem in problems}:
            count_admission_rejection(reason.value, by="webhook")
        raise kopf.AdmissionError(describe(problems), code=422)
