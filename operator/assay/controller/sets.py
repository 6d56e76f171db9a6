"""The EvaluationSet part of the controller: indices and the reconcile; thin (its admission check is
:func:`assay.controller.admission.webhooks.validate_evaluation_set`).

A set's children are Evaluations it owns (ownerReferences): the ``children_by_set`` index keys them by
their owner, so a child's watch event reconciles its set and nothing is ever listed. The decisions are
:func:`assay.rollup.evaluation_set.plan_set`'s; here they are applied (creates with deterministic names, so
a restarted operator creates no duplicate; suspend and cancel patched onto the children) and the status is
written in one merge patch when it differs from the stored one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

import kopf
from pydantic import ValidationError

from assay.api import GROUP, EvaluationSet, EvaluationSetStatus
from assay.controller import metrics
from assay.controller.coalescer import Coalescer
from assay.controller.indexes import EvaluationIndex, every, first
from assay.controller.kube import Cluster, CreateRefused, is_gone
from assay.controller.settings import OperatorSettings
from assay.rollup import status_changes
from assay.rollup.evaluation_set import Child, child_evaluation, expand, plan_set, set_problems

logger = logging.getLogger(__name__)

SetKey = tuple[str, str]  # (namespace, name)
# A child this process created shows up in the index within this long, or was deleted meanwhile.
CREATED_CHILD_VISIBLE_WITHIN_SECONDS = 30.0


# --- indices (registered in assay.controller.kopf_handlers; the sets themselves are kept raw by
# assay.controller.indexes.objects_by_key) -----------------------------------------------------------------


class ChildEntry(TypedDict):
    """What ``children_by_set`` keeps of a child: the uid of the set that owns it, and the child as the set
    reads it."""

    owner: str
    child: Child


def owning_set(namespace: str | None, meta: Mapping[str, Any]) -> tuple[SetKey, str] | None:
    """The set that owns an Evaluation (its key and uid), if one does."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "EvaluationSet" and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return (namespace or "", ref.get("name", "")), ref.get("uid", "")
    return None


async def children_by_set(
    *, namespace: str | None, name: str, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[SetKey, ChildEntry]:
    """The children of each set: only what the set's status reads of them."""
    owner = owning_set(namespace, meta)
    if owner is None:
        return {}
    results = status.get("results") or {}
    return {
        owner[0]: {
            "owner": owner[1],
            "child": Child(
                name=name,
                phase=status.get("phase"),
                suspend=bool(spec.get("suspend")),
                cancel=bool(spec.get("cancel")),
                summary=dict(results.get("summary") or {}),
                cost=dict(status["cost"]) if status.get("cost") else None,
            ),
        }
    }


# --- the reconcile ---------------------------------------------------------------------------------------


@dataclass
class SetIndices:
    # Raw EvaluationSets (objects_by_key) and every Evaluation (to see names taken by others).
    sets: kopf.Index[SetKey, Mapping[str, Any]] | None = None
    children: kopf.Index[SetKey, ChildEntry] | None = None
    evaluations: EvaluationIndex | None = None


@dataclass
class _SetMemory:
    """All of it may be lost (restart) without harm: names are deterministic, the index is refilled."""

    # Status as last written, by uid, with the resourceVersion it got, until the index shows it.
    written: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # Children created and not yet in the index, by (set uid, child name): when (monotonic clock).
    created: dict[tuple[str, str], float] = field(default_factory=dict)
    # The apiserver's message for a child it refused for good, by set uid.
    refused: dict[str, str] = field(default_factory=dict)


class SetController:
    """Reconciles EvaluationSets from the indices; see the module docstring."""

    def __init__(self, settings: OperatorSettings, cluster: Cluster, indices: SetIndices) -> None:
        self.cluster = cluster
        self.indices = indices
        self.memory = _SetMemory()
        self.sets: Coalescer[SetKey] = Coalescer(
            "reconcile evaluation set",
            self.reconcile_set,
            batch_seconds=settings.reconcile_batch_seconds,
            retry_initial=settings.retry_initial_seconds,
            retry_max=settings.retry_max_seconds,
        )

    async def close(self) -> None:
        await self.sets.close()

    def child_changed(self, namespace: str | None, meta: Mapping[str, Any]) -> None:
        owner = owning_set(namespace, meta)
        if owner is not None:
            self.sets.request(owner[0])

    def forget(self, key: SetKey, uid: str) -> None:
        self.sets.forget(key)
        self.memory.written.pop(uid, None)
        self.memory.refused.pop(uid, None)
        for item in [item for item in self.memory.created if item[0] == uid]:
            del self.memory.created[item]

    def _stored_status(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = raw.get("metadata") or {}
        written = self.memory.written.get(metadata.get("uid", ""))
        if written is not None:
            if written[0] != metadata.get("resourceVersion"):
                return written[1]
            del self.memory.written[metadata.get("uid", "")]
        stored: Mapping[str, Any] = raw.get("status") or {}
        return stored

    def _creating(self, uid: str, children: Mapping[str, Child]) -> list[str]:
        """Children created lately that the index does not show yet (forgotten after a while: deleted)."""
        now = time.monotonic()
        creating = []
        for owner, name in list(self.memory.created):
            if owner != uid:
                continue
            if (
                name in children
                or now - self.memory.created[owner, name] > CREATED_CHILD_VISIBLE_WITHIN_SECONDS
            ):
                del self.memory.created[owner, name]
            else:
                creating.append(name)
        return creating

    def _taken(
        self, evaluation_set: EvaluationSet, children: Mapping[str, Child], creating: list[str]
    ) -> str | None:
        """Why a child cannot be created: another Evaluation has its name (creating it would answer
        AlreadyExists, and the set would wait for a child that is not its own)."""
        if set_problems(evaluation_set.spec):
            return None
        namespace = evaluation_set.namespace
        taken = [
            combo.child
            for combo in expand(evaluation_set.spec, evaluation_set.name)
            if combo.child not in children
            and combo.child not in creating
            and first(self.indices.evaluations, (namespace, combo.child)) is not None
        ]
        if not taken:
            return None
        return (
            f"Evaluation {', '.join(taken[:3])} already exists and is not a child of this set: "
            "delete it, or give the set another name"
        )

    async def reconcile_set(self, key: SetKey) -> None:
        raw = first(self.indices.sets, key)
        if raw is None or (raw.get("metadata") or {}).get("deletionTimestamp"):
            return
        stored = self._stored_status(raw)
        try:
            evaluation_set = EvaluationSet.model_validate({**raw, "status": stored})
        except ValidationError as exc:
            logger.warning("EvaluationSet %s/%s cannot be read and is ignored: %s", *key, exc)
            return
        with metrics.reconcile_timer("evaluationset"):
            uid = evaluation_set.metadata.uid or ""
            children = {
                entry["child"].name: entry["child"]
                for entry in every(self.indices.children, key)
                if entry["owner"] == uid
            }
            creating = self._creating(uid, children)
            now = datetime.now(UTC)
            refused = self.memory.refused.get(uid) or self._taken(evaluation_set, children, creating)
            plan = plan_set(evaluation_set, children, creating, now, refused)
            for combo in plan.create:
                try:
                    await self.cluster.create(child_evaluation(evaluation_set, combo))
                except CreateRefused as exc:
                    self.memory.refused[uid] = exc.refusal.describe()
                    plan = plan_set(evaluation_set, children, creating, now, self.memory.refused[uid])
                    break
                self.memory.created[uid, combo.child] = time.monotonic()
            namespace = evaluation_set.namespace
            for name, suspend in plan.suspend.items():
                await self.cluster.patch_evaluation_spec(namespace, name, {"suspend": suspend})
            for name in plan.cancel:
                await self.cluster.patch_evaluation_spec(namespace, name, {"cancel": True})
            await self._write_status(key, uid, stored, plan.status)

    async def _write_status(
        self, key: SetKey, uid: str, stored: Mapping[str, Any], status: EvaluationSetStatus
    ) -> None:
        patch = status_changes(stored, status)
        if patch is None:
            return
        try:
            result = await self.cluster.patch_evaluation_set_status(key[0], key[1], patch)
        except Exception as exc:
            if is_gone(exc):
                return
            raise
        version = (result.get("metadata") or {}).get("resourceVersion", "")
        self.memory.written[uid] = (version, dict(result.get("status") or {}))
