"""A stand-in for `assay.controller.kube.Cluster` with only the reads admission makes, each recorded."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, cast

from assay.api import ResourcePool
from assay.controller.kube import Cluster


def pool_body(name: str = "a100", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "ResourcePool",
        "metadata": {"name": name},
        "spec": spec,
    }


def pool(name: str = "a100", **spec: Any) -> ResourcePool:
    return ResourcePool.model_validate(pool_body(name, **spec))


def encoded(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@dataclass
class FakeCluster:
    """Pools by name, namespaces' labels, Secrets' stored ``data`` by (namespace, name); absent means 404."""

    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    reads: list[tuple[str, ...]] = field(default_factory=list)

    async def read_pool(self, name: str) -> dict[str, Any] | None:
        self.reads.append(("pool", name))
        return self.pools.get(name)

    async def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        self.reads.append(("namespace", namespace))
        return self.namespaces.get(namespace)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(("secret", namespace, name))
        return self.secrets.get((namespace, name))

    def as_cluster(self) -> Cluster:
        return cast(Cluster, self)
