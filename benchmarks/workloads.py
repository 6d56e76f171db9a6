"""The objects each arm creates for one evaluation, all of the same shape.

An Assay Evaluation with ``tasks = T`` runs an Indexed Job of T predict pods, then one evaluate pod once every
predict task succeeded. The arms do the same work:

- A2 (Assay): one Evaluation in a ResourcePool (the fake GPU nodes);
- A0 (raw Jobs): the benchmark creates the Jobs Assay renders for that Evaluation (``assay.render.job_for``,
  owner reference aside, the retention TTL already set): the predict Indexed Job, and the evaluate Job when
  predict completes. So the floor runs the very pods Assay runs (environment contract, securityContext,
  podFailurePolicy, TTL, deadline);
- A1 (JobSet): one JobSet with two replicated Jobs of those same Job specs, ``evaluate`` depending on
  ``predict`` being Complete.

Every task pod asks for one GPU on the fake 8-GPU nodes (:func:`nodes`) and tolerates their taint,
and mounts one PersistentVolumeClaim (``bench-store``: model, data and output, as Assay mounts its pvc://
locations), bound to a PersistentVolume that fake nodes never touch.
Pure functions: unit-testable, no cluster.
"""

from __future__ import annotations

import uuid
from typing import Any

from assay.api import Evaluation, ResourcePool
from assay.contract import Step
from assay.controller.reconciler import render_options
from assay.controller.settings import OperatorSettings
from assay.render import LABEL_EVALUATION, LABEL_STEP, job_for, retention_of

NAMESPACE = "bench"
# The labels by which every arm's Jobs and pods name their evaluation and step: Assay's own (A0 and A1 run
# the Jobs Assay renders).
EVAL_LABEL = LABEL_EVALUATION
STEP_LABEL = LABEL_STEP
NODE_SELECTOR = {"gpu.example.com/type": "bench"}
TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
TASK_RESOURCES = {"nvidia.com/gpu": "1", "cpu": "1", "memory": "1Gi"}
IMAGE = "assay-bench/task:none"  # never pulled: fake nodes run nothing
POOL = "bench"
CLAIM = "bench-store"


# The delay of the pods' auto-complete stage, as benchmarks/kwok/pod-auto-complete-bench.yaml writes it.
STAGE_DELAY = "durationMilliseconds: 1000"


def nodes(count: int, gpus: int) -> dict[str, Any]:
    """The benchmark cluster's fake nodes, as one List for kubectl: ``count`` nodes of ``gpus`` GPUs, shaped
    like the test cluster's a100 nodes (hack/kwok/nodes.yaml), labelled for NODE_SELECTOR, tainted as
    TOLERATIONS allow, managed by kwok (annotated kwok.x-k8s.io/node=fake, labelled type=kwok)."""

    def node(i: int) -> dict[str, Any]:
        name = f"bench-gpu-{i}"
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "assay.dev/pool-node": POOL,
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    **NODE_SELECTOR,
                },
            },
            "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"cpu": "96", "memory": "1152Gi", "pods": "110", "nvidia.com/gpu": str(gpus)},
                "allocatable": {"cpu": "94", "memory": "1100Gi", "pods": "110", "nvidia.com/gpu": str(gpus)},
            },
        }

    return {"apiVersion": "v1", "kind": "List", "items": [node(i) for i in range(count)]}


def pod_auto_complete_stage(template: str, pod_ms: int) -> str:
    """The stage that ends every Job's pod ``pod_ms`` after it runs, from the stage file's text."""
    if template.count(STAGE_DELAY) != 1:
        raise ValueError(f"the stage should say {STAGE_DELAY!r} once")
    return template.replace(STAGE_DELAY, f"durationMilliseconds: {pod_ms}")


def eval_name(i: int) -> str:
    return f"e-{i:05d}"


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}


def storage(namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The claim every task pod mounts, pre-bound to a volume (no provisioner on the benchmark cluster)."""
    volume = f"{namespace}-{CLAIM}"
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "100Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": f"/nonexistent/{volume}"},  # fake nodes mount nothing
                "claimRef": {"namespace": namespace, "name": CLAIM},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": "100Gi"}},
            },
        },
    ]


# The A2 operator's settings beyond its defaults, and what it renders Jobs with, so A0's Jobs too.
# (BENCH_OPERATOR_ARGS can change the operator's settings further: A0 does not follow them.)
OPERATOR_ENV = {"ASSAY_OPERATOR_DEFAULT_RUNTIME_IMAGE": IMAGE}
RENDER_OPTIONS = render_options(OperatorSettings.from_env(OPERATOR_ENV))
_UID_NAMESPACE = uuid.UUID("6f1c1d0e-4b7a-4c1e-9a53-62d0a6b7c0de")


def evaluation_uid(evaluation_name: str, namespace: str = NAMESPACE) -> str:
    """A0 has no Evaluation object, so no uid from the apiserver: one of the same form, fixed per name."""
    return str(uuid.uuid5(_UID_NAMESPACE, f"{namespace}/{evaluation_name}"))


def rendered_job(evaluation_name: str, step: Step, tasks: int, namespace: str = NAMESPACE) -> dict[str, Any]:
    """A0: the Job Assay renders for :func:`evaluation` ``(evaluation_name, tasks)`` and ``step`` in the
    benchmark pool, without the owner reference (there is no Evaluation object), with the retention TTL
    (rendered at creation for the default retention; a short one the operator sets once the outcome is
    recorded, and A0 records nothing, so its Job has it from the start)."""
    body = evaluation(evaluation_name, tasks, namespace=namespace)
    body["metadata"]["uid"] = evaluation_uid(evaluation_name, namespace)
    job = job_for(
        Evaluation.model_validate(body),
        ResourcePool.model_validate(resource_pool()),
        step,
        RENDER_OPTIONS,
    )
    del job["metadata"]["ownerReferences"]
    job["spec"].update(retention_of(job, RENDER_OPTIONS) or {})
    return job


def jobset(
    evaluation: str, tasks: int, *, suspend: bool = False, namespace: str = NAMESPACE
) -> dict[str, Any]:
    """A1: the whole evaluation as one JobSet (predict, then evaluate once predict is Complete), its two
    replicated Jobs with the specs of A0's (:func:`rendered_job`).

    ``network.enableDNSHostnames: false``: JobSet would otherwise create a headless Service per JobSet,
    work that neither Assay nor the raw Jobs do.
    """

    def spec(step: Step) -> dict[str, Any]:
        job_spec: dict[str, Any] = rendered_job(evaluation, step, tasks, namespace)["spec"]
        return job_spec

    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": evaluation, "namespace": namespace, "labels": {EVAL_LABEL: evaluation}},
        "spec": {
            "suspend": suspend,
            "network": {"enableDNSHostnames": False},
            "replicatedJobs": [
                {
                    "name": "predict",
                    "replicas": 1,
                    "template": {"spec": spec(Step.PREDICT)},
                },
                {
                    "name": "evaluate",
                    "replicas": 1,
                    "dependsOn": [{"name": "predict", "status": "Complete"}],
                    "template": {"spec": spec(Step.EVALUATE)},
                },
            ],
        },
    }


def resource_pool() -> dict[str, Any]:
    """A2: the pool every benchmark Evaluation runs in: the fake GPU nodes, no quota (nothing queues)."""
    return {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "ResourcePool",
        "metadata": {"name": POOL},
        "spec": {
            "description": "Benchmark pool: the fake 8-GPU nodes of the benchmark cluster",
            "nodeSelector": dict(NODE_SELECTOR),
            "tolerations": [dict(t) for t in TOLERATIONS],
            "resources": [
                {"name": "nvidia.com/gpu", "default": "1", "min": "0", "max": "8"},
                {"name": "cpu", "default": "1", "max": "32"},
                {"name": "memory", "default": "1Gi", "max": "256Gi"},
            ],
        },
    }


def evaluation(name: str, tasks: int, *, suspend: bool = False, namespace: str = NAMESPACE) -> dict[str, Any]:
    """A2: one Evaluation; the model, dataset and output claims are never read (fake pods run nothing)."""
    return {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "Evaluation",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "pool": POOL,
            "model": {"name": "bench-model", "version": "v1", "uri": f"pvc://{CLAIM}/model"},
            "handler": "bench_handler:Handler",
            "dataset": {"name": "bench-data", "version": "v1", "uri": f"pvc://{CLAIM}/data"},
            "runtime": {"name": "bench", "version": "1", "image": IMAGE},
            "tasks": tasks,
            "resources": dict(TASK_RESOURCES),
            "output": {"pvc": CLAIM},
            "backoffLimitPerTask": 1,
            "suspend": suspend,
        },
    }
