"""Stand-ins for the controller's unit tests: a `Cluster` that records every write (the reads are
admission_fakes'), indices as kopf shapes them (a key → the values stored under it), raw Evaluations."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from admission_fakes import FakeCluster
from test_rollup_evaluation import SPEC

from assay.controller.indexes import StoredEvaluation
from assay.controller.kube import CreateRefused
from assay.rollup import CreateRefusal


@dataclass
class RecordingCluster(FakeCluster):
    """Every write, in order, as (verb, ...); ``refuse`` names kinds whose create the apiserver refuses."""

    writes: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    versions: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    async def create(self, body: dict[str, Any]) -> bool:
        kind, name = body["kind"], body["metadata"]["name"]
        if kind in self.refuse:
            raise CreateRefused(CreateRefusal(kind, name, 403, f"{kind} {name} is forbidden: by a policy"))
        self.writes.append(("create", kind, name))
        return True

    async def patch_job_spec(self, namespace: str, name: str, changes: dict[str, Any]) -> None:
        self.writes.append(("patch job", name, dict(changes)))

    async def delete_job(self, namespace: str, name: str) -> None:
        self.writes.append(("delete job", name))

    async def patch_evaluation_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self.writes.append(("patch status", name, dict(patch)))
        version = str(next(self.versions))
        return {"metadata": {"name": name, "resourceVersion": version}, "status": dict(patch)}

    async def patch_pool_status(self, name: str, patch: dict[str, Any]) -> None:
        self.writes.append(("patch pool", name, dict(patch)))

    def verbs(self) -> list[str]:
        return [w[0] for w in self.writes]


def index(*entries: tuple[Any, Any]) -> dict[Any, list[Any]]:
    """A kopf index: each key with the list of values stored under it."""
    found: dict[Any, list[Any]] = {}
    for key, value in entries:
        found.setdefault(key, []).append(value)
    return found


def evaluation_index(*raws: dict[str, Any]) -> dict[Any, list[Any]]:
    """kopf's ``evaluations_by_key`` index holding these raw Evaluations."""
    return index(
        *(((raw["metadata"]["namespace"], raw["metadata"]["name"]), StoredEvaluation.of(raw)) for raw in raws)
    )


def raw_evaluation(
    name: str = "ev",
    *,
    namespace: str = "ns",
    version: str = "1",
    status: dict[str, Any] | None = None,
    created: str = "2026-01-01T12:00:00Z",
    **spec: Any,
) -> dict[str, Any]:
    """An Evaluation as kopf's ``evaluations_by_key`` index keeps it."""
    return {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "Evaluation",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"{name}-uid",
            "resourceVersion": version,
            "generation": 1,
            "creationTimestamp": created,
        },
        "spec": {**SPEC, **spec},
        "status": status or {},
    }
