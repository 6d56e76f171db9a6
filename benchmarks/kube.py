"""A minimal asyncio Kubernetes client for the benchmark driver (aiohttp, raw JSON).

Why not the kubernetes client packages: the driver must cost the control plane as little CPU as possible
(it shares two cores with it) and must stamp watch events with the time they arrive. Raw JSON dicts and a
streaming watch give both; client model objects would add deserialisation the operator under test is
measured for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

USER_AGENT = "assay-bench/0.1"


@dataclass(frozen=True)
class WatchEvent:
    received: float  # time.time() when the line arrived
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    obj: dict[str, Any]


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:300]}")
        self.status = status


def _material(entry: dict[str, Any], key: str, base_dir: Path, tmp_dir: Path) -> str | None:
    """Path of a PEM given inline (``key-data``) or as a file (``key``)."""
    if entry.get(f"{key}-data"):
        out = tmp_dir / key
        out.write_bytes(base64.b64decode(entry[f"{key}-data"]))
        return str(out)
    if entry.get(key):
        return str((base_dir / entry[key]).resolve())
    return None


def ssl_context_from_kubeconfig(path: Path, tmp_dir: Path) -> tuple[str, ssl.SSLContext]:
    """The server URL and TLS context of the kubeconfig's current context (client certificates only)."""
    config = yaml.safe_load(path.read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    tmp_dir.mkdir(parents=True, exist_ok=True)
    base = path.parent
    ctx = ssl.create_default_context(cafile=_material(cluster, "certificate-authority", base, tmp_dir))
    cert = _material(user, "client-certificate", base, tmp_dir)
    key = _material(user, "client-key", base, tmp_dir)
    if cert is None or key is None:
        raise ValueError(f"{path}: the benchmark needs a client-certificate user (as kwokctl writes)")
    ctx.load_cert_chain(cert, key)
    return str(cluster["server"]).rstrip("/"), ctx


class Kube:
    """Create/get/list/delete and watch, on JSON dicts."""

    def __init__(self, kubeconfig: Path, tmp_dir: Path, *, connections: int = 32) -> None:
        self.server, ssl_ctx = ssl_context_from_kubeconfig(kubeconfig, tmp_dir)
        self._connector = aiohttp.TCPConnector(ssl=ssl_ctx, limit=connections)
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(self, method: str, path: str, body: Any = None, *, ok_missing: bool = False) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        async with self._session.request(method, self.server + path, data=data, headers=headers) as resp:
            text = await resp.text()
            if resp.status == 404 and ok_missing:
                return None
            if resp.status >= 300:
                raise ApiError(resp.status, method, path, text)
            return json.loads(text) if text else None

    async def text(self, path: str) -> str:
        """A plain-text endpoint of the apiserver (e.g. /metrics)."""
        async with self._session.get(self.server + path) as resp:
            body = await resp.text()
            if resp.status >= 300:
                raise ApiError(resp.status, "GET", path, body)
            return body

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", path, body)
        return result

    async def apply_all(self, docs: list[dict[str, Any]]) -> None:
        """Create each document at its collection path (cluster objects only of known kinds)."""
        for doc in docs:
            await self.create(collection_path(doc), doc)

    async def watch(
        self, path: str, resource_version: str | None = None, *, opened: asyncio.Event | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Stream watch events of a collection, each stamped with its arrival time.

        Starts with the current objects (``sendInitialEvents`` is not needed: the benchmark starts its
        watches on an empty cluster). Ends when the server closes the stream; callers re-watch from the
        last resourceVersion.
        """
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "3600"}
        if resource_version:
            params["resourceVersion"] = resource_version
        async with self._session.get(self.server + path, params=params) as resp:
            if resp.status >= 300:
                raise ApiError(resp.status, "WATCH", path, await resp.text())
            if opened is not None:
                opened.set()
            buffer = b""
            async for chunk in resp.content.iter_any():
                received = time.time()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        event = json.loads(line)
                        yield WatchEvent(received, event["type"], event["object"])


# Collection paths of the kinds the benchmark creates.
_CORE = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "Pod": "pods",
    "PersistentVolume": "persistentvolumes",
    "PersistentVolumeClaim": "persistentvolumeclaims",
}
_GROUPED = {
    "Job": "jobs",
    "JobSet": "jobsets",
    "Evaluation": "evaluations",
    "ResourcePool": "resourcepools",
    "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
}
_CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "ResourcePool",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
}


def collection_path(doc: dict[str, Any]) -> str:
    kind = doc["kind"]
    api_version = doc["apiVersion"]
    namespace = doc.get("metadata", {}).get("namespace", "default")
    if kind in _CORE:
        prefix, plural = "/api/v1", _CORE[kind]
    elif kind in _GROUPED:
        prefix, plural = f"/apis/{api_version}", _GROUPED[kind]
    else:
        raise ValueError(f"the benchmark does not know the collection of kind {kind}")
    if kind in _CLUSTER_SCOPED:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{namespace}/{plural}"
