"""The controller's side of pools in Kueue mode: is Kueue installed, Kueue's Workloads of Assay's Jobs (a kopf
index registered only when it is), and the one change Assay makes to them (``spec.active``).

Kueue owns each Workload it makes by the Job's owner reference, so the Workloads are indexed by
(namespace, Job name), and a second index on the Jobs (already watched) maps a Job name to its Evaluation:
a Workload event (a new wait message, an admission) reconciles the Evaluation without any listing.
Whether Kueue is installed is read once, at start-up, from API discovery (any authenticated client may):
Kueue installed later takes an operator restart, which its pools' Ready condition says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from assay.contract import Step
from assay.controller.indexes import EvaluationKey, evaluation_key, every, first
from assay.controller.kube import Cluster
from assay.render.names import LABEL_EVALUATION
from assay.rollup.observed import Raw
from assay.rollup.workloads import KUEUE_GROUP, WORKLOAD_PLURAL, WORKLOAD_VERSION, workloads_by_step

logger = logging.getLogger(__name__)

JobKey = tuple[str, str]  # (namespace, Job name)
WORKLOAD_INDEX = "workloads_by_job"
JOB_OWNER_INDEX = "evaluations_by_job"


async def kueue_installed(api: client.ApiClient, retry_max_seconds: float = 30.0) -> bool:
    """Whether the apiserver serves Kueue's Workloads (``kueue.x-k8s.io/v1beta2``); asked again, with
    backoff, until the apiserver answers (the operator may start before it is reachable)."""
    delay = 1.0
    while True:
        try:
            resources = await client.CustomObjectsApi(api).get_api_resources(KUEUE_GROUP, WORKLOAD_VERSION)
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status < 500 and exc.status not in (401, 408, 429):
                raise
            problem: object = exc.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            problem = exc
        else:
            return any(r.name == WORKLOAD_PLURAL for r in resources.resources or [])
        logger.warning("Cannot tell whether Kueue is installed (%s); asking again in %.0f s", problem, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, retry_max_seconds)


def _job_owners(namespace: str | None, metadata: Mapping[str, Any]) -> list[JobKey]:
    return [
        (namespace or "", ref["name"])
        for ref in metadata.get("ownerReferences") or []
        if ref.get("kind") == "Job" and ref.get("name")
    ]


async def workloads_by_job(*, namespace: str | None, body: kopf.Body, **_: Any) -> dict[JobKey, Any]:
    """Each Workload by the Job that owns it (see :func:`slim_workload`)."""
    slim = slim_workload(body)
    return {job: slim for job in _job_owners(namespace, body.get("metadata", {}))}


def slim_workload(body: Mapping[str, Any]) -> dict[str, Any]:
    """What :mod:`assay.rollup.workloads` reads of a Workload (Kueue's pod sets are most of the rest)."""
    metadata, status = body.get("metadata", {}), body.get("status") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "creationTimestamp": metadata.get("creationTimestamp"),
            "ownerReferences": [
                {"kind": r.get("kind"), "name": r.get("name"), "uid": r.get("uid")}
                for r in metadata.get("ownerReferences") or []
            ],
        },
        "spec": {k: v for k, v in (body.get("spec") or {}).items() if k in ("queueName", "active")},
        "status": {
            "conditions": list(status.get("conditions") or []),
            "admission": {"clusterQueue": (status.get("admission") or {}).get("clusterQueue")},
        },
    }


async def evaluations_by_job(
    *, namespace: str | None, name: str, labels: kopf.Labels, annotations: kopf.Annotations, **_: Any
) -> dict[JobKey, EvaluationKey]:
    """The Evaluation of each of Assay's Jobs, by Job name (to route a Workload event)."""
    return {(namespace or "", name): evaluation_key(namespace, labels, annotations)}


class KueueView:
    """What the controller reads of Kueue: installed or not, and the Workloads of an Evaluation's Jobs."""

    def __init__(
        self,
        installed: bool,
        workloads: kopf.Index[JobKey, Any] | None = None,
        job_owners: kopf.Index[JobKey, EvaluationKey] | None = None,
    ) -> None:
        self.installed = installed
        self.workloads = workloads
        self.job_owners = job_owners

    def workloads_of(self, namespace: str, jobs: Mapping[Step, Raw]) -> dict[Step, Raw]:
        found = [
            w for job in jobs.values() for w in every(self.workloads, (namespace, job["metadata"]["name"]))
        ]
        return workloads_by_step(found, jobs)

    def evaluations_of(self, namespace: str | None, body: Mapping[str, Any]) -> list[EvaluationKey]:
        keys = (first(self.job_owners, job) for job in _job_owners(namespace, body.get("metadata", {})))
        return [key for key in keys if key is not None]


async def set_workloads_active(
    cluster: Cluster, namespace: str, workloads: Sequence[Raw], active: bool | None
) -> None:
    """Kueue's way to stop (or restart) a workload: its ``spec.active``; unset means active."""
    if active is None:
        return
    for workload in workloads:
        if workload.get("spec", {}).get("active", True) == active:
            continue
        name = workload["metadata"]["name"]
        await cluster.patch_workload_spec(namespace, name, {"active": active})
        logger.info("%s Workload %s/%s", "Activated" if active else "Deactivated", namespace, name)


def register(registry: kopf.OperatorRegistry, changed: Any) -> None:
    """The two indices and the Workload event handler ``changed`` (only where Kueue is installed)."""
    kopf.index(KUEUE_GROUP, WORKLOAD_VERSION, WORKLOAD_PLURAL, id=WORKLOAD_INDEX, registry=registry)(
        workloads_by_job
    )
    kopf.index(
        "batch", "v1", "jobs", labels={LABEL_EVALUATION: kopf.PRESENT}, id=JOB_OWNER_INDEX, registry=registry
    )(evaluations_by_job)
    kopf.on.event(KUEUE_GROUP, WORKLOAD_VERSION, WORKLOAD_PLURAL, registry=registry)(changed)
