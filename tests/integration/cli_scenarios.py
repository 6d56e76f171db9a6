"""Evaluations in known states on the real cluster, for the CLI and SDK integration tests.

Without the operator, the tests play its part, the way it does it: an Indexed Job per evaluation with
``backoffLimitPerIndex`` (so the Job controller really retries a failed index with a new pod), the pods driven
to their end on KWOK nodes, and the Evaluation's status written through the status subresource from the
pods that exist. The CLI and SDK then read exactly what they would read from the operator.

When the cluster serves kwok's ``Logs`` objects (``enableCRDs: [Logs]``), each pod also gets a log file, so
``assay logs`` returns its content; :attr:`World.logs_served` says whether it does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from assay.api import (
    EVALUATION_PLURAL,
    GROUP,
    POOL_PLURAL,
    VERSION,
    EvaluationStatus,
    ResourcePoolStatus,
)
from support import FakePods, wait_until

KWOK_GROUP = "kwok.x-k8s.io"
KWOK_VERSION = "v1alpha1"
LABEL_EVALUATION = "assay.dev/evaluation"
LABEL_STEP = "assay.dev/step"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def manifest(
    name: str, pool: str, *, tasks: int = 2, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {
            "pool": pool,
            "model": {
                "name": name.rsplit("-", 1)[0],
                "version": name.rsplit("-", 1)[-1],
                "uri": "pvc://models/m",
            },
            "handler": "mnist_eval:MNISTEvaluator",
            "dataset": {"name": "mnist-test", "version": "v1", "uri": "pvc://datasets/mnist"},
            "runtime": {"name": "pytorch", "version": "2.4", "image": "runtime:2.4"},
            "tasks": tasks,
            "output": {"pvc": "eval-results"},
        },
    }


def logs_served(api: client.ApiClient) -> bool:
    """True when kwok serves pod logs from ``Logs`` objects on this cluster."""
    try:
        resources = client.CustomObjectsApi(api).get_api_resources(KWOK_GROUP, KWOK_VERSION)
    except ApiException:
        return False
    return any(r.name == "logs" for r in resources.resources)


@dataclass
class World:
    """What a scenario built: the namespace, the pool, and per evaluation its pods by (step, index)."""

    namespace: str
    pool: str
    logs_served: bool
    pods: dict[str, dict[tuple[str, int], list[str]]] = field(default_factory=dict)
    log_lines: dict[str, str] = field(default_factory=dict)  # pod name -> its log content
    uids: dict[str, str] = field(default_factory=dict)


class Operator:
    """Plays the operator for one namespace: creates Jobs, drives their pods, writes Evaluation status."""

    def __init__(self, api: client.ApiClient, namespace: str, log_dir: Path) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.fake_pods = FakePods(self.core)
        self.namespace = namespace
        self.log_dir = log_dir
        self.serves_logs = logs_served(api)

    # --- pools ----------------------------------------------------------------------------------------

    def create_pool(self, name: str) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ResourcePool",
            "metadata": {"name": name},
            "spec": {
                "description": "GPUs for the CLI tests",
                "nodeSelector": {"type": "kwok"},
                "resources": [{"name": "nvidia.com/gpu", "default": "1", "max": "8"}],
                "quota": {"nvidia.com/gpu": "16"},
                "pricing": {"currency": "USD", "perHour": {"nvidia.com/gpu": "2.50"}},
            },
        }
        self.custom.create_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, body)
        status = ResourcePoolStatus(
            capacity={"nvidia.com/gpu": "32"},
            in_use={"nvidia.com/gpu": "2"},
            running_evaluations=1,
            queued_evaluations=0,
            nodes=4,
        )
        self.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, POOL_PLURAL, name, {"status": status.to_api()}
        )

    def delete_pool(self, name: str) -> None:
        try:
            self.custom.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise

    # --- jobs and pods --------------------------------------------------------------------------------

    def run_job(self, evaluation: str, uid: str, step: str, completions: int) -> None:
        """An Indexed Job like the operator's: one retry per index, owned by the Evaluation, pods on KWOK."""
        labels = {LABEL_EVALUATION: evaluation, LABEL_STEP: step}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{evaluation}-{step}",
                "labels": labels,
                "ownerReferences": [
                    {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Evaluation", "name": evaluation, "uid": uid}
                ],
            },
            "spec": {
                "completionMode": "Indexed",
                "completions": completions,
                "parallelism": completions,
                "backoffLimitPerIndex": 1,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "nodeSelector": {"type": "kwok"},
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "task", "image": "assay-runner:fake"}],
                    },
                },
            },
        }
        self.batch.create_namespaced_job(self.namespace, job)

    def _pod_of(self, evaluation: str, step: str, index: int, exclude: set[str]) -> str:
        selector = f"{LABEL_EVALUATION}={evaluation},{LABEL_STEP}={step}"

        def running() -> str | None:
            for pod in self.fake_pods.list(self.namespace, selector):
                annotations = pod.metadata.annotations or {}
                if (
                    annotations.get(COMPLETION_INDEX) == str(index)
                    and pod.metadata.name not in exclude
                    and pod.status.phase == "Running"
                ):
                    return str(pod.metadata.name)
            return None

        return wait_until(running, timeout=60, what=f"a Running pod of {evaluation} {step}/{index}")

    def finish_task(
        self,
        world: World,
        evaluation: str,
        step: str,
        index: int,
        *,
        outcome: str = "succeed",
        exit_code: int | None = None,
        message: str | None = None,
        log: str | None = None,
    ) -> str:
        """Wait for the task's next pod, give it a log, end it; returns the pod's name."""
        seen = set(world.pods.setdefault(evaluation, {}).setdefault((step, index), []))
        pod = self._pod_of(evaluation, step, index, seen)
        world.pods[evaluation][(step, index)].append(pod)
        text = log or f"{evaluation} {step}/{index} attempt {len(seen) + 1}\n"
        world.log_lines[pod] = text
        if self.serves_logs:
            self._serve_log(pod, text)
        self.fake_pods.finish(self.namespace, pod, outcome, exit_code=exit_code, message=message)
        self.fake_pods.wait_phase(self.namespace, pod, ["Succeeded", "Failed"])
        return pod

    def _serve_log(self, pod: str, text: str) -> None:
        path = self.log_dir / f"{self.namespace}-{pod}.log"
        path.write_text(text)
        body = {
            "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
            "kind": "Logs",
            "metadata": {"name": pod, "namespace": self.namespace},
            "spec": {"logs": [{"containers": ["task"], "logsFile": str(path), "follow": False}]},
        }
        self.custom.create_namespaced_custom_object(KWOK_GROUP, KWOK_VERSION, self.namespace, "logs", body)

    # --- evaluation status ----------------------------------------------------------------------------

    def write_status(self, evaluation: str, status: EvaluationStatus) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, EVALUATION_PLURAL, evaluation, {"status": status.to_api()}
        )


def finished_status(
    world: World,
    evaluation: str,
    *,
    summary: dict[str, Any],
    started: datetime,
    seconds: int,
    attempts: Mapping[tuple[str, int], int],
) -> EvaluationStatus:
    """A Succeeded status as the operator writes it, naming the latest pod of every task."""
    done = started + timedelta(seconds=seconds)
    tasks = [
        {
            "step": step,
            "index": index,
            "phase": "Succeeded",
            "pod": pods[-1],
            "node": "kwok-a100-0",
            "attempts": attempts.get((step, index), 1),
            "startTime": started,
            "completionTime": done,
            "exitCode": 0,
        }
        for (step, index), pods in sorted(world.pods[evaluation].items())
    ]
    return EvaluationStatus.model_validate(
        {
            "phase": "Succeeded",
            "startTime": started,
            "completionTime": done,
            "tasks": tasks,
            "taskCounts": {"total": len(tasks), "succeeded": len(tasks)},
            "cost": {"currency": "USD", "estimatedMax": "10.00", "accrued": f"{seconds * 0.01:.2f}"},
            "results": {
                "summary": summary,
                "records": 10000,
                "location": f"pvc://eval-results/{world.namespace}/{evaluation}/",
            },
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "True",
                    "reason": "AllTasksSucceeded",
                    "message": f"{len(tasks)} of {len(tasks)} tasks succeeded",
                    "lastTransitionTime": done,
                }
            ],
        }
    )


def running_status(world: World, evaluation: str, started: datetime) -> EvaluationStatus:
    """A Running status in debug mode: one task done, one running, no results yet."""
    return EvaluationStatus.model_validate(
        {
            "phase": "Running",
            "startTime": started,
            "expiresAt": started + timedelta(hours=1),
            "tasks": [
                {"step": "predict", "index": 0, "phase": "Succeeded", "attempts": 1, "exitCode": 0},
                {"step": "predict", "index": 1, "phase": "Running", "attempts": 1},
                {"step": "evaluate", "index": 0, "phase": "Pending", "attempts": 0},
            ],
            "taskCounts": {"total": 3, "succeeded": 1, "running": 1, "pending": 1},
            "cost": {"currency": "USD", "estimatedMax": "10.00", "accrued": "0.50"},
            "debug": {
                "service": f"{evaluation}-debug",
                "port": 8000,
                "passwordSecret": f"{evaluation}-debug",
            },
            "conditions": [
                {
                    "type": "Running",
                    "status": "True",
                    "reason": "TasksRunning",
                    "message": "1 of 3 tasks succeeded, 1 running",
                    "lastTransitionTime": started,
                }
            ],
        }
    )


def build_world(api: client.ApiClient, namespace: str, log_dir: Path) -> World:
    """Three evaluations in ``namespace`` (created a second apart, so "newest first" is a real order):

    * ``cnn-v3``: Succeeded; accuracy 0.95, macro avg/f1 0.94, loss 0.20; 150 s;
    * ``cnn-v4``: Succeeded; accuracy 0.97, macro avg/f1 0.94, loss 0.15, recall 0.9; 120 s; its predict
      task 1 failed once (exit 12) and succeeded on the retry; labelled ``team=vision``;
    * ``mlp-v1``: Running in debug mode, no results yet.
    """
    operator = Operator(api, namespace, log_dir)
    pool = f"cli-{secrets.token_hex(3)}"
    operator.create_pool(pool)
    world = World(namespace=namespace, pool=pool, logs_served=operator.serves_logs)
    custom = operator.custom
    started = datetime.now(UTC).replace(microsecond=0)
    for name, labels in (("cnn-v3", {}), ("cnn-v4", {"team": "vision"}), ("mlp-v1", {"team": "vision"})):
        created = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, manifest(name, pool, labels=labels)
        )
        world.uids[name] = created["metadata"]["uid"]
        operator.run_job(name, world.uids[name], "predict", 2)
        time.sleep(1.1)  # creation timestamps have whole seconds

    for name in ("cnn-v3", "cnn-v4"):
        operator.finish_task(world, name, "predict", 0)
    operator.finish_task(world, "cnn-v3", "predict", 1)
    operator.finish_task(
        world,
        "cnn-v4",
        "predict",
        1,
        outcome="fail",
        exit_code=12,
        message='{"reason": "HandlerFailed", "message": "CUDA error"}',
        log="loading model\nCUDA error: device-side assert triggered\n",
    )
    operator.finish_task(world, "cnn-v4", "predict", 1, log="loading model\npredicted 5000 records\n")
    operator.finish_task(world, "mlp-v1", "predict", 0)

    for name in ("cnn-v3", "cnn-v4"):
        operator.run_job(name, world.uids[name], "evaluate", 1)
        operator.finish_task(world, name, "evaluate", 0, log=f"{name}: accuracy computed\n")

    operator.write_status(
        "cnn-v3",
        finished_status(
            world,
            "cnn-v3",
            summary={"accuracy": 0.95, "macro avg/f1": 0.94, "loss": 0.20},
            started=started,
            seconds=150,
            attempts={},
        ),
    )
    operator.write_status(
        "cnn-v4",
        finished_status(
            world,
            "cnn-v4",
            summary={"accuracy": 0.97, "macro avg/f1": 0.94, "loss": 0.15, "recall": 0.9},
            started=started,
            seconds=120,
            attempts={("predict", 1): 2},
        ),
    )
    operator.write_status("mlp-v1", running_status(world, "mlp-v1", started))
    return world


def create_namespace(core: client.CoreV1Api, prefix: str) -> str:
    """A namespace for one test module (labelled like the suite's own), with its default service account."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"assay.dev/test": "true"}))
    )
    wait_until(
        lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
        timeout=30,
        what=f"the default service account in {name}",
    )
    return name
