"""Evaluations driven to known states by the real operator, for the CLI and SDK integration tests.

An ``assay-operator`` process watches one test namespace; it creates the Jobs, the tests end the task pods on
KWOK nodes (one task fails with exit code 12 and is retried by the Job controller, evaluate steps report
their summary in the termination message, as the runner does), and the operator writes the status the CLI
and SDK then read.

When the cluster serves kwok's ``Logs`` objects (``enableCRDs: [Logs]``), each pod also gets a log file, so
``assay logs`` returns its content; :attr:`World.logs_served` says whether it does.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from assay import Client
from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION, Evaluation, Phase
from assay.contract import result_message
from support import FakePods, wait_until

KWOK_GROUP = "kwok.x-k8s.io"
KWOK_VERSION = "v1alpha1"
LABEL_EVALUATION = "assay.dev/evaluation"
LABEL_STEP = "assay.dev/step"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
OPERATOR_BIN = Path(sys.executable).with_name("assay-operator")

SUMMARIES: dict[str, dict[str, Any]] = {
    "cnn-v3": {"accuracy": 0.95, "macro avg/f1": 0.94, "loss": 0.20},
    "cnn-v4": {"accuracy": 0.97, "macro avg/f1": 0.94, "loss": 0.15, "recall": 0.9},
}
RECORDS = 10000


def manifest(
    name: str, pool: str, *, tasks: int = 2, labels: Mapping[str, str] | None = None, debug: bool = False
) -> dict[str, Any]:
    """An Evaluation whose tasks can run on KWOK nodes (file:// locations: no volumes to bind)."""
    spec: dict[str, Any] = {
        "pool": pool,
        "model": {
            "name": name.rsplit("-", 1)[0],
            "version": name.rsplit("-", 1)[-1],
            "uri": "file:///models/m",
        },
        "handler": "mnist_eval:MNISTEvaluator",
        "dataset": {"name": "mnist-test", "version": "v1", "uri": "file:///data/mnist"},
        "runtime": {"name": "pytorch", "version": "2.4", "image": "assay-runner:fake"},
        "tasks": tasks,
    }
    if debug:
        spec["debug"] = {"enabled": True}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": spec,
    }


def pool_body(name: str) -> dict[str, Any]:
    """A pool of the fake A100 nodes whose tasks ask for CPUs only: GPUs on the shared test cluster may be
    held by other tests' pods, and these tests are about what the CLI shows, not about GPU scheduling."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResourcePool",
        "metadata": {"name": name},
        "spec": {
            "description": "Fake A100 nodes for the CLI tests",
            "nodeSelector": {"assay.dev/pool-node": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "resources": [
                {"name": "cpu", "default": "1", "max": "8"},
                {"name": "nvidia.com/gpu", "default": "0", "max": "8"},
            ],
            "quota": {"cpu": "16"},
            "pricing": {"currency": "USD", "perHour": {"cpu": "0.50", "nvidia.com/gpu": "2.50"}},
        },
    }


NO_LOGS = (
    "kwok serves no pod logs on this cluster, so log content is not checked (only that each request reaches "
    "the right pod): start it with --enable-crds=Stage,Logs,ClusterLogs, see hack/kwok/README.md"
)


def logs_served(api: client.ApiClient) -> bool:
    """True when kwok serves pod logs from ``Logs`` objects on this cluster."""
    try:
        resources = client.CustomObjectsApi(api).get_api_resources(KWOK_GROUP, KWOK_VERSION)
    except ApiException:
        return False
    return any(r.name == "logs" for r in resources.resources)


class OperatorRun:
    """One ``assay-operator`` process for one namespace (standalone, no webhook); output in a log file."""

    def __init__(self, kubeconfig: Path, namespace: str, log_dir: Path) -> None:
        self.log_path = log_dir / f"operator-{namespace}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_OPERATOR_")}
        self.process = subprocess.Popen(
            [
                str(OPERATOR_BIN),
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                namespace,
                "--peering",
                "",
                "--webhook",
                "none",
                "--metrics-port",
                "0",
                "--health-port",
                "0",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
        )

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@dataclass
class World:
    """What a scenario built: the namespace, the pool, and per evaluation its pods by (step, index)."""

    namespace: str
    pool: str
    logs_served: bool
    operator: OperatorRun
    pods: dict[str, dict[tuple[str, int], list[str]]] = field(default_factory=dict)
    log_lines: dict[str, str] = field(default_factory=dict)  # pod name -> its log content
    uids: dict[str, str] = field(default_factory=dict)


class TaskDriver:
    """Ends task pods of the operator's Jobs as a test says, giving each a log when kwok serves logs."""

    def __init__(self, api: client.ApiClient, world: World, log_dir: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.fake_pods = FakePods(client.CoreV1Api(api))
        self.world = world
        self.log_dir = log_dir

    def _next_pod(self, evaluation: str, step: str, index: int) -> str:
        seen = set(self.world.pods.setdefault(evaluation, {}).setdefault((step, index), []))
        selector = f"{LABEL_EVALUATION}={evaluation},{LABEL_STEP}={step}"

        def running() -> str | None:
            for pod in self.fake_pods.list(self.world.namespace, selector):
                annotations = pod.metadata.annotations or {}
                if (
                    annotations.get(COMPLETION_INDEX, "0") == str(index)
                    and pod.metadata.name not in seen
                    and pod.status.phase == "Running"
                ):
                    return str(pod.metadata.name)
            return None

        try:
            return wait_until(running, timeout=90, what=f"a new Running pod of {evaluation} {step}/{index}")
        except Exception as error:
            raise AssertionError(f"{error}\noperator log:\n{self.world.operator.log_tail()}") from error

    def finish(
        self,
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
        pod = self._next_pod(evaluation, step, index)
        attempts = self.world.pods[evaluation][(step, index)]
        attempts.append(pod)
        text = log or f"{evaluation} {step}/{index} attempt {len(attempts)}\n"
        self.world.log_lines[pod] = text
        if self.world.logs_served:
            self._serve_log(pod, text)
        self.fake_pods.finish(self.world.namespace, pod, outcome, exit_code=exit_code, message=message)
        self.fake_pods.wait_phase(self.world.namespace, pod, ["Succeeded", "Failed"])
        return pod

    def start(self, evaluation: str, step: str, index: int, *, log: str | None = None) -> str:
        """Wait for the task's pod and leave it running (with a log)."""
        pod = self._next_pod(evaluation, step, index)
        self.world.pods[evaluation][(step, index)].append(pod)
        self.world.log_lines[pod] = log or f"{evaluation} {step}/{index} still running\n"
        if self.world.logs_served:
            self._serve_log(pod, self.world.log_lines[pod])
        return pod

    def report(self, evaluation: str) -> str:
        """End the evaluate step with the summary in its termination message, as the runner does."""
        message = result_message(SUMMARIES[evaluation], RECORDS)
        return self.finish(evaluation, "evaluate", 0, message=message, log=f"{evaluation}: {message}\n")

    def _serve_log(self, pod: str, text: str) -> None:
        path = self.log_dir / f"{self.world.namespace}-{pod}.log"
        # kwok reads container logs in the CRI format a kubelet keeps: "<time> <stream> F <line>".
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        path.write_text("".join(f"{stamp} stdout F {line}\n" for line in text.splitlines()))
        body = {
            "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
            "kind": "Logs",
            "metadata": {"name": pod, "namespace": self.world.namespace},
            "spec": {"logs": [{"containers": ["task"], "logsFile": str(path), "follow": False}]},
        }
        self.custom.create_namespaced_custom_object(
            KWOK_GROUP, KWOK_VERSION, self.world.namespace, "logs", body
        )


def wait_for_phase(sdk: Client, world: World, name: str, phase: Phase, timeout: float = 90) -> Evaluation:
    def reached() -> Evaluation | None:
        evaluation = sdk.get(name)
        return evaluation if evaluation.status.phase == phase else None

    try:
        return wait_until(reached, timeout=timeout, what=f"evaluation {name} to be {phase.value}")
    except Exception as error:
        raise AssertionError(f"{error}\noperator log:\n{world.operator.log_tail()}") from error


def build_world(api: client.ApiClient, kubeconfig: Path, namespace: str, work_dir: Path) -> World:
    """Three evaluations in ``namespace``, created a second apart (so "newest first" is a real order):

    * ``cnn-v3``: Succeeded; accuracy 0.95, macro avg/f1 0.94, loss 0.20;
    * ``cnn-v4``: Succeeded; accuracy 0.97, macro avg/f1 0.94, loss 0.15, recall 0.9; its predict task 1
      failed once (exit code 12) and succeeded when the Job controller retried it; labelled ``team=vision``;
    * ``mlp-v1``: Running in debug mode (predict 0 done, predict 1 running), no results yet;
      labelled ``team=vision``.
    """
    custom = client.CustomObjectsApi(api)
    pool = f"cli-{secrets.token_hex(3)}"
    custom.create_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, pool_body(pool))
    operator = OperatorRun(kubeconfig, namespace, work_dir)
    world = World(namespace=namespace, pool=pool, logs_served=logs_served(api), operator=operator)
    try:
        _drive(api, kubeconfig, world, work_dir)
    except BaseException:
        tear_down(api, world)
        raise
    return world


def _drive(api: client.ApiClient, kubeconfig: Path, world: World, work_dir: Path) -> None:
    custom = client.CustomObjectsApi(api)
    plan = (
        ("cnn-v3", {}, False),
        ("cnn-v4", {"team": "vision"}, False),
        ("mlp-v1", {"team": "vision"}, True),
    )
    for position, (name, labels, debug) in enumerate(plan):
        if position:
            time.sleep(1.1)  # creation timestamps have whole seconds
        created = custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            world.namespace,
            EVALUATION_PLURAL,
            manifest(name, world.pool, labels=labels, debug=debug),
        )
        world.uids[name] = created["metadata"]["uid"]

    tasks = TaskDriver(api, world, work_dir)
    tasks.finish("cnn-v3", "predict", 0)
    tasks.finish("cnn-v3", "predict", 1)
    tasks.finish("cnn-v4", "predict", 0)
    tasks.finish(
        "cnn-v4",
        "predict",
        1,
        outcome="fail",
        exit_code=12,
        message='{"reason": "HandlerFailed", "message": "CUDA error: device-side assert triggered"}',
        log="loading model\nCUDA error: device-side assert triggered\n",
    )
    tasks.finish("mlp-v1", "predict", 0)
    tasks.start("mlp-v1", "predict", 1)
    tasks.report("cnn-v3")
    tasks.finish("cnn-v4", "predict", 1, log="loading model\npredicted 5000 records\n")  # the retry
    tasks.report("cnn-v4")

    with Client(kubeconfig, namespace=world.namespace) as sdk:
        wait_for_phase(sdk, world, "cnn-v3", Phase.SUCCEEDED)
        wait_for_phase(sdk, world, "cnn-v4", Phase.SUCCEEDED)

        def debug_ready() -> bool:
            status = sdk.get("mlp-v1").status
            return bool(status.phase == Phase.RUNNING and status.debug is not None and status.debug.service)

        wait_until(debug_ready, timeout=60, what="mlp-v1 to run in debug mode")


@contextmanager
def world_in_new_namespace(
    api: client.ApiClient, kubeconfig: Path, prefix: str, work_dir: Path
) -> Iterator[World]:
    """A namespace of its own with a driven world in it (one per test module); torn down and deleted after."""
    core = client.CoreV1Api(api)
    namespace = create_namespace(core, prefix)
    try:
        world = build_world(api, kubeconfig, namespace, work_dir)
        try:
            yield world
        finally:
            tear_down(api, world)
    finally:
        if not os.environ.get("ASSAY_KEEP_NAMESPACES"):
            core.delete_namespace(namespace, propagation_policy="Background")


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


def tear_down(api: client.ApiClient, world: World) -> None:
    """Stop the operator, end the pods still running and wait until the Job controller let go of every pod
    (a namespace deleted before that keeps such pods, and itself, Terminating), then delete the pool."""
    world.operator.stop()
    core = client.CoreV1Api(api)
    fake_pods = FakePods(core)
    for pod in fake_pods.list(world.namespace):
        if pod.status.phase in ("Pending", "Running") and pod.spec.node_name:
            fake_pods.succeed(world.namespace, pod.metadata.name)
        elif not pod.spec.node_name and pod.metadata.finalizers:
            # Never scheduled (a run cut short): no kubelet will end it, so the Job controller would keep
            # its job-tracking finalizer, and the namespace Terminating, for ever.
            core.patch_namespaced_pod(pod.metadata.name, world.namespace, {"metadata": {"finalizers": None}})
    wait_until(
        lambda: all(not p.metadata.finalizers for p in fake_pods.list(world.namespace)),
        timeout=60,
        what=f"the Job controller to release the pods of {world.namespace}",
    )
    try:
        client.CustomObjectsApi(api).delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, world.pool)
    except ApiException as error:
        if error.status != 404:
            raise
