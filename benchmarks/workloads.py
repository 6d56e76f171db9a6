"""The objects each arm creates for one evaluation, all of the same shape.

An Assay Evaluation with ``tasks = T`` runs an Indexed Job of T predict pods, then one evaluate pod once every
predict task succeeded. The arms do the same work:

- A0 (raw Jobs): the benchmark creates the predict Indexed Job, and the evaluate Job when predict completes.
- A1 (JobSet): one JobSet with two replicated Jobs, ``evaluate`` depending on ``predict`` being Complete.
- A2 (Assay): one Evaluation in a ResourcePool whose placement matches the pods of A0/A1.

Every task pod asks for one GPU on the fake 8-GPU nodes (:func:`nodes`) and tolerates their taint,
and mounts one PersistentVolumeClaim (``bench-store``: model, data and output, as Assay mounts its pvc://
locations), bound to a PersistentVolume that fake nodes never touch.
Pure functions: unit-testable, no cluster.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "bench"
# The label by which A0 and A1 objects (and their pods) name their evaluation.
EVAL_LABEL = "bench.assay.dev/evaluation"
STEP_LABEL = "bench.assay.dev/step"
NODE_SELECTOR = {"gpu.example.com/type": "bench"}
TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
TASK_RESOURCES = {"nvidia.com/gpu": "1", "cpu": "1", "memory": "1Gi"}
IMAGE = "assay-bench/task:none"  # never pulled: fake nodes run nothing
POOL = "bench"
CLAIM = "bench-store"
MOUNT = f"/assay/volumes/{CLAIM}"  # where Assay mounts pvc://bench-store/...


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


def _pod_template(evaluation: str, step: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {EVAL_LABEL: evaluation, STEP_LABEL: step}},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": dict(NODE_SELECTOR),
            "tolerations": [dict(t) for t in TOLERATIONS],
            "containers": [
                {
                    "name": "task",
                    "image": IMAGE,
                    "resources": {"requests": dict(TASK_RESOURCES), "limits": dict(TASK_RESOURCES)},
                    "volumeMounts": [{"name": "store", "mountPath": MOUNT}],
                }
            ],
            "volumes": [{"name": "store", "persistentVolumeClaim": {"claimName": CLAIM}}],
        },
    }


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


def _job_spec(evaluation: str, step: str, tasks: int) -> dict[str, Any]:
    return {
        "completionMode": "Indexed",
        "completions": tasks,
        "parallelism": tasks,
        "backoffLimitPerIndex": 1,
        "template": _pod_template(evaluation, step),
    }


def raw_job(evaluation: str, step: str, tasks: int) -> dict[str, Any]:
    """A0: one step of an evaluation as a plain Indexed Job (``<evaluation>-<step>``)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{evaluation}-{step}",
            "namespace": NAMESPACE,
            "labels": {EVAL_LABEL: evaluation, STEP_LABEL: step},
        },
        "spec": _job_spec(evaluation, step, tasks),
    }


def jobset(evaluation: str, tasks: int, *, suspend: bool = False) -> dict[str, Any]:
    """A1: the whole evaluation as one JobSet (predict, then evaluate once predict is Complete).

    ``network.enableDNSHostnames: false``: JobSet would otherwise create a headless Service per JobSet,
    work that neither Assay nor the raw Jobs do.
    """
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": evaluation, "namespace": NAMESPACE, "labels": {EVAL_LABEL: evaluation}},
        "spec": {
            "suspend": suspend,
            "network": {"enableDNSHostnames": False},
            "replicatedJobs": [
                {
                    "name": "predict",
                    "replicas": 1,
                    "template": {"spec": _job_spec(evaluation, "predict", tasks)},
                },
                {
                    "name": "evaluate",
                    "replicas": 1,
                    "dependsOn": [{"name": "predict", "status": "Complete"}],
                    "template": {"spec": _job_spec(evaluation, "evaluate", 1)},
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
