"""In-memory kopf indices of what the controller watches: Evaluations, their Jobs and pods, ResourcePools,
nodes and namespaces' labels.

:func:`assay.controller.kopf_handlers.build_registry` registers them. The controller and the admission
webhook read only these; they never list objects from the API. kopf fills every index before any handler
runs, so a restarted operator sees the Jobs it created before and creates no duplicate.

The index functions are ``async`` so that kopf calls them on the event loop, not through a thread pool.
Pods and Jobs are watched with a server-side label selector (``assay.dev/evaluation``), so the operator
receives only task pods, and only the fields the rollup reads are kept. They are keyed by the Evaluation's
full name (:func:`assay.render.names.evaluation_of`: the label may be a shortened one).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import kopf
import orjson
from pydantic import ValidationError

from assay.api import ResourcePool
from assay.render.names import evaluation_of
from assay.rollup.pools import NodeInfo

logger = logging.getLogger(__name__)

EvaluationKey = tuple[str, str]  # (namespace, name)
EvaluationIndex = kopf.Index[EvaluationKey, "StoredEvaluation"]  # see evaluations_by_key
ObjectsIndex = kopf.Index[EvaluationKey, Mapping[str, Any]]  # slim Jobs of each Evaluation
PodIndex = kopf.Index[EvaluationKey, "StoredPod"]  # task pods of each Evaluation, see pods_by_evaluation
PoolIndex = kopf.Index[str, ResourcePool]


async def objects_by_key(
    *, namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[EvaluationKey, dict[str, Any]]:
    """Every object of a namespaced kind (EvaluationSets), raw, by (namespace, name): see :func:`slim_raw`."""
    return {(namespace or "", name): slim_raw(body)}


def slim_raw(body: Mapping[str, Any]) -> dict[str, Any]:
    """Spec, status and the metadata the controller reads (not managedFields or kubectl's last-applied copy
    of the spec, which would double what is kept)."""
    metadata = body.get("metadata", {})
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: metadata[k] for k in EVALUATION_METADATA if k in metadata},
        "spec": body.get("spec", {}),
        "status": body.get("status", {}),
    }


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    """An Evaluation as the index keeps it: what a scan over a pool's Evaluations reads, and the rest as
    compressed JSON.

    A pool may hold thousands of Evaluations that wait, are suspended or finished long ago. Kept as parsed
    dictionaries each costs about 8 KiB (the status' task list most of it); orjson's output keeps a 4 KiB
    buffer whatever its length; compressed, a suspended one takes 0.7 KiB. The few in work are decoded when
    reconciled (:meth:`raw`: about 10 microseconds, against milliseconds for the reconcile).
    """

    uid: str
    resource_version: str
    pool: str
    phase: str | None
    suspend: bool
    cancel: bool
    body: bytes  # :func:`slim_raw`, as JSON, compressed

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> StoredEvaluation:
        raw = slim_raw(body)
        metadata, spec, status = raw["metadata"], raw["spec"] or {}, raw["status"] or {}
        return cls(
            uid=metadata.get("uid", ""),
            resource_version=metadata.get("resourceVersion", ""),
            pool=spec.get("pool", ""),
            phase=status.get("phase"),
            suspend=bool(spec.get("suspend")),
            cancel=bool(spec.get("cancel")),
            body=zlib.compress(orjson.dumps(raw), 1),  # level 1: within 5 % of level 6, and faster
        )

    def raw(self) -> dict[str, Any]:
        """The Evaluation as :func:`slim_raw` left it (a new dictionary on every call)."""
        raw: dict[str, Any] = orjson.loads(zlib.decompress(self.body))
        return raw


async def evaluations_by_key(
    *, namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[EvaluationKey, StoredEvaluation]:
    """Every Evaluation by (namespace, name), compact (see :class:`StoredEvaluation`)."""
    return {(namespace or "", name): StoredEvaluation.of(body)}


EVALUATION_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
)


def _slim_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("name", "namespace", "uid", "labels", "annotations", "creationTimestamp", "deletionTimestamp")
    slim = {k: metadata[k] for k in keep if k in metadata}
    slim["ownerReferences"] = [
        {"uid": ref.get("uid"), "kind": ref.get("kind"), "name": ref.get("name")}
        for ref in metadata.get("ownerReferences") or []
    ]
    return slim


def evaluation_key(
    namespace: str | None, labels: kopf.Labels, annotations: kopf.Annotations
) -> EvaluationKey:
    """The Evaluation a Job or task pod belongs to."""
    return namespace or "", evaluation_of(labels, annotations)


async def jobs_by_evaluation(
    *, namespace: str | None, body: kopf.Body, labels: kopf.Labels, annotations: kopf.Annotations, **_: Any
) -> dict[EvaluationKey, dict[str, Any]]:
    """The Jobs of each Evaluation (see :func:`job_essentials`)."""
    return {evaluation_key(namespace, labels, annotations): job_essentials(body)}


def job_essentials(body: Mapping[str, Any]) -> dict[str, Any]:
    """Suspend, deadline, retention, conditions and the index sets: all the controller reads of a Job (not
    its ``active``, ``ready`` and ``terminating`` counters, which change with every pod). The retention is
    kept so that a Job given it is not patched again (``render.retention_of``)."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return {
        "metadata": _slim_metadata(body.get("metadata", {})),
        "spec": {
            "suspend": spec.get("suspend", False),
            "activeDeadlineSeconds": spec.get("activeDeadlineSeconds"),
            "ttlSecondsAfterFinished": spec.get("ttlSecondsAfterFinished"),
        },
        "status": {k: status[k] for k in ("conditions", "completedIndexes", "failedIndexes") if k in status},
    }


@dataclass(frozen=True, slots=True)
class StoredPod:
    """A task pod as the index keeps it: :func:`slim_pod` as JSON.

    A burst leaves tens of thousands of task pods (tier M of the benchmark: 17,000), and they are read
    only when their Evaluation is reconciled. As dictionaries each took 2.8 KiB and 8 objects that every
    full garbage collection walks; as JSON 0.6 KiB and one, decoded in about 2 microseconds.
    """

    body: bytes

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> StoredPod:
        # A copy: orjson's output keeps a 4 KiB buffer whatever its length.
        return cls(bytes(memoryview(orjson.dumps(slim_pod(pod)))))

    def raw(self) -> dict[str, Any]:
        """The pod as :func:`slim_pod` left it (a new dictionary on every call)."""
        raw: dict[str, Any] = orjson.loads(self.body)
        return raw


async def pods_by_evaluation(
    *, namespace: str | None, body: kopf.Body, labels: kopf.Labels, annotations: kopf.Annotations, **_: Any
) -> dict[EvaluationKey, StoredPod]:
    """The task pods of each Evaluation (see :class:`StoredPod`)."""
    return {evaluation_key(namespace, labels, annotations): StoredPod.of(body)}


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """Node, phase, scheduling, container states of a task pod (what :func:`assay.rollup.observed.pod_state`
    reads; a pod's full status is several times larger)."""
    status = body.get("status") or {}
    return {
        "metadata": _slim_metadata(body.get("metadata", {})),
        "spec": {"nodeName": body.get("spec", {}).get("nodeName")},
        "status": {
            **{k: status[k] for k in ("phase", "startTime", "reason", "message") if k in status},
            "conditions": [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"],
            "containerStatuses": [
                {"name": c.get("name"), "state": c.get("state") or {}}
                for c in status.get("containerStatuses") or []
            ],
        },
    }


def pools_by_name(name: str, body: kopf.Body, **_: Any) -> dict[str, ResourcePool]:
    """Every ResourcePool by name, parsed (a pool the models cannot read is left out, with a warning)."""
    try:
        return {name: ResourcePool.model_validate(dict(body))}
    except ValidationError as exc:
        logger.warning("ResourcePool %s is not readable and is ignored: %s", name, exc)
        return {}


def pool_from_index(index: PoolIndex | None, name: str) -> ResourcePool | None:
    """The pool called ``name`` in the index, if the index has it."""
    pool: ResourcePool | None = first(index, name)
    return pool


async def nodes_by_name(
    *, name: str, labels: kopf.Labels, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[str, NodeInfo]:
    return {
        name: NodeInfo(
            labels=dict(labels),
            allocatable=dict(status.get("allocatable") or {}),
            schedulable=not spec.get("unschedulable", False),
        )
    }


async def namespace_labels_by_name(*, name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    """Each namespace's labels (for budgets that select namespaces by label; a cluster has few)."""
    return {name: dict(labels)}


Key = TypeVar("Key")
Value = TypeVar("Value")


def first(index: kopf.Index[Key, Value] | None, key: Key) -> Value | None:
    """The single value an index holds for ``key`` (Evaluations, pools, nodes are unique by key)."""
    if index is None or key not in index:
        return None
    return next(iter(index[key]), None)


def every(index: kopf.Index[Key, Value] | None, key: Key) -> list[Value]:
    """All values an index holds for ``key`` (the Jobs or pods of one Evaluation)."""
    if index is None or key not in index:
        return []
    return list(index[key])
