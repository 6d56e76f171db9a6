"""What the admission checks need from the API, read through :class:`~assay.controller.kube.Cluster`.

The checks themselves are pure (:mod:`assay.admission`); these functions gather their facts: the pool (when
the index misses), the namespace's labels (when the pool selects namespaces by label), the lengths of the
debug Secret's values (when one is named). The webhook and the controller both call them, so a cluster
without the webhook refuses the same Evaluations (condition Accepted=False).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from assay.admission import Problem, check_new_evaluation, pool_needs_namespace_labels
from assay.api import EvaluationSpec, ResourcePool
from assay.controller.indexes import PoolIndex, pool_from_index
from assay.controller.kube import Cluster


async def find_pool(cluster: Cluster, index: PoolIndex | None, name: str) -> ResourcePool | None:
    """The pool called ``name``: from the index, else read from the API (the index may still be filling
    right after start-up; a missing pool must be really missing before an Evaluation is refused)."""
    if (pool := pool_from_index(index, name)) is not None:
        return pool
    raw = await cluster.read_pool(name)
    return None if raw is None else ResourcePool.model_validate(raw)


async def evaluation_problems(
    cluster: Cluster, spec: EvaluationSpec, namespace: str, pool: ResourcePool | None
) -> list[Problem]:
    """Gather what :func:`assay.admission.check_new_evaluation` needs from the API, then call it."""
    labels: Mapping[str, str] | None = None
    secret_lengths: Mapping[str, int] | None = None
    secret_ref = spec.debug.password_secret_ref if spec.debug is not None else None
    if pool is not None:
        if pool_needs_namespace_labels(pool):
            labels = await cluster.namespace_labels(namespace)
        if secret_ref is not None:
            secret_lengths = value_lengths(await cluster.secret_data(namespace, secret_ref.name))
    return check_new_evaluation(
        spec, namespace=namespace, pool=pool, namespace_labels=labels, debug_secret_lengths=secret_lengths
    )


def value_lengths(data: Mapping[str, str | None] | None) -> dict[str, int] | None:
    """Each key's value length in characters, for the minimum-length rule; no value leaves here."""
    if data is None:
        return None
    return {key: _characters(encoded) for key, encoded in data.items()}


def _characters(encoded: str | None) -> int:
    # The apiserver stores valid base64; bytes that are not UTF-8 still count (as replacement characters).
    return len(base64.b64decode(encoded or "").decode("utf-8", errors="replace"))
