"""Every write the controller makes to the cluster, and the few reads it makes outside kopf's indices,
asynchronous (kubernetes_asyncio): the event loop never waits on a synchronous API call.

Creates use deterministic names and treat 409 AlreadyExists as success, so a restarted operator (or two
reconciles racing) never makes a duplicate. A create the apiserver refuses for what the object is (any other
4xx but 401, 408 and 429: invalid, forbidden by a ResourceQuota or policy) raises :class:`CreateRefused`:
sending it again would be refused again. Deletes treat 404 as success; reads answer None for 404.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar, cast

import aiohttp
import orjson
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from assay.api import EVALUATION_PLURAL, EVALUATION_SET_PLURAL, GROUP, POOL_PLURAL, VERSION
from assay.rollup import CreateRefusal
from assay.rollup.workloads import KUEUE_GROUP, WORKLOAD_PLURAL, WORKLOAD_VERSION

logger = logging.getLogger(__name__)
T = TypeVar("T")

MERGE_PATCH = "application/merge-patch+json"
# Custom objects take JSON merge patches (lists replaced whole), which is what a status diff is.
_AS_MERGE_PATCH: dict[str, Any] = {"_content_type": MERGE_PATCH}
# 4xx answers that say nothing about the object: the operator's credentials, a timeout, throttling.
TRANSIENT_CLIENT_ERRORS = frozenset({401, 408, 429})


class CreateRefused(Exception):
    """The apiserver refused to create an object for good (see the module docstring)."""

    def __init__(self, refusal: CreateRefusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def api_client(max_connections: int | None = None) -> client.ApiClient:
    """The controller's API client, without aiohttp's per-request lookups in the environment.

    kubernetes_asyncio opens its session with ``trust_env=True``: for every request aiohttp then reads
    ``~/.netrc`` and the proxy variables in a worker thread (two thread hops per request, in the profile).
    Without proxy variables there is nothing for it to find, so the session is reopened without them on
    the same connection pool; with proxy variables it is left as it is.

    ``max_connections`` bounds the requests in flight (the client's default is 100; see
    ``OperatorSettings.api_connections``).
    """
    configuration = client.Configuration.get_default_copy()
    if max_connections is not None:
        configuration.connection_pool_maxsize = max_connections
    api = client.ApiClient(configuration)
    if urllib.request.getproxies():
        return api
    rest = api.rest_client
    connector = rest.pool_manager.connector
    rest.pool_manager.detach()  # keep the connection pool: the new session takes it over
    rest.pool_manager = aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=2**21)
    return api


class Cluster:
    """The operator's API client; one per process, opened at start-up and closed at the end."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    async def close(self) -> None:
        await self.api.close()

    async def read_pool(self, name: str) -> dict[str, Any] | None:
        """A ResourcePool as stored, or None if there is none of that name."""
        found: dict[str, Any] | None = await _unless_gone(
            self.custom.get_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
        )
        return found

    async def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        """A namespace's labels, or None if it does not exist."""
        found = await _unless_gone(self.core.read_namespace(namespace))
        return None if found is None else dict(found.metadata.labels or {})

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's ``data`` (each value base64, as stored), or None if it does not exist."""
        found = await _unless_gone(self.core.read_namespaced_secret(name, namespace))
        return None if found is None else dict(found.data or {})

    async def create(self, body: Mapping[str, Any]) -> bool:
        """Create a Job, Service or Secret; True if created now, False if it already existed."""
        kind, namespace = body["kind"], body["metadata"]["namespace"]
        manifest = cast(Any, dict(body))  # the clients accept plain API dicts as well as their models
        call: Awaitable[Any]
        if kind == "Job":
            call = self.batch.create_namespaced_job(namespace, manifest, _preload_content=False)
        elif kind == "Service":
            call = self.core.create_namespaced_service(namespace, manifest, _preload_content=False)
        elif kind == "Secret":
            call = self.core.create_namespaced_secret(namespace, manifest, _preload_content=False)
        elif kind == "Evaluation":  # a child of an EvaluationSet
            call = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, EVALUATION_PLURAL, manifest, _preload_content=False
            )
        else:  # pragma: no cover - a programming error
            raise ValueError(f"the controller does not create {kind} objects")
        try:
            if await _status_of(call, tolerated=409) == 409:
                return False
        except ApiException as exc:
            if exc.status is None or not 400 <= exc.status < 500 or exc.status in TRANSIENT_CLIENT_ERRORS:
                raise
            refusal = CreateRefusal(kind, body["metadata"]["name"], exc.status, _message_of(exc))
            logger.warning("In namespace %s, %s", namespace, refusal.describe())
            raise CreateRefused(refusal) from exc
        logger.info("Created %s %s/%s", kind, namespace, body["metadata"]["name"])
        return True

    async def patch_job_spec(self, namespace: str, name: str, changes: Mapping[str, Any]) -> None:
        """Change mutable Job spec fields: suspend (true deletes its running pods), activeDeadlineSeconds."""
        call = self.batch.patch_namespaced_job(
            name, namespace, {"spec": dict(changes)}, _preload_content=False
        )
        await _status_of(call, tolerated=404)

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job; its pods go with it (background cascade)."""
        call = self.batch.delete_namespaced_job(
            name, namespace, propagation_policy="Background", _preload_content=False
        )
        if await _status_of(call, tolerated=404) != 404:
            logger.info("Deleted Job %s/%s", namespace, name)

    async def patch_evaluation_status(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One merge patch to the status subresource; returns the object as stored."""
        call = self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, name, {"status": dict(patch)},
            _preload_content=False, **_AS_MERGE_PATCH,
        )  # fmt: skip
        return await _json_of(call)

    async def patch_evaluation_spec(self, namespace: str, name: str, changes: Mapping[str, Any]) -> None:
        """Change an Evaluation's mutable spec fields (an EvaluationSet's suspend and cancel)."""
        call = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, name, {"spec": dict(changes)},
            _preload_content=False, **_AS_MERGE_PATCH,
        )  # fmt: skip
        await _status_of(call, tolerated=404)

    async def patch_workload_spec(self, namespace: str, name: str, changes: Mapping[str, Any]) -> None:
        """Change a Kueue Workload's spec: only ``active``, Kueue's way to stop and restart a workload."""
        call = self.custom.patch_namespaced_custom_object(
            KUEUE_GROUP, WORKLOAD_VERSION, namespace, WORKLOAD_PLURAL, name, {"spec": dict(changes)},
            _preload_content=False, **_AS_MERGE_PATCH,
        )  # fmt: skip
        await _status_of(call, tolerated=404)

    async def patch_evaluation_set_status(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, EVALUATION_SET_PLURAL, name, {"status": dict(patch)},
            **_AS_MERGE_PATCH,
        )  # fmt: skip
        return result

    async def patch_pool_status(self, name: str, patch: Mapping[str, Any]) -> None:
        await self.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, POOL_PLURAL, name, {"status": dict(patch)}, **_AS_MERGE_PATCH
        )


async def _unless_gone(call: Awaitable[T]) -> T | None:
    """The reply to a read, or None where the object does not exist (404)."""
    try:
        return await call
    except ApiException as exc:
        if is_gone(exc):
            return None
        raise


async def _status_of(call: Awaitable[Any], *, tolerated: int) -> int:
    """Send a request without building client model objects from the reply (for a Job, that took more
    CPU than the request itself): its HTTP status, which is a success or ``tolerated``, else ApiException."""
    response = await call
    try:
        status = int(response.status)
        if status >= 300 and status != tolerated:
            error = ApiException(status=status, reason=response.reason)
            error.body = await response.text()
            raise error
        return status
    finally:
        response.release()


async def _json_of(call: Awaitable[Any]) -> dict[str, Any]:
    """Send a request and decode its reply with orjson (the client decodes with the standard ``json``
    module, at twice the CPU, and the controller writes a status for every change); a refusal raises
    ApiException as the client would."""
    response = await call
    try:
        body = await response.read()
        if int(response.status) >= 300:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = body.decode("utf-8", "replace")
            raise error
        result: dict[str, Any] = orjson.loads(body)
        return result
    finally:
        response.release()


def _message_of(exc: ApiException) -> str:
    """The apiserver's own message (a Status object's ``message``), else the raw reply."""
    try:
        return str(json.loads(exc.body or "").get("message") or exc.body)
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or exc.reason)


def is_gone(exc: BaseException) -> bool:
    """The object (or its namespace) no longer exists."""
    return isinstance(exc, ApiException) and exc.status == 404
