"""The operator on the real cluster, driving KWOK fake pods: from `kubectl apply` to a summary in status.

Each test runs its own ``assay-operator`` process (as a pod would run it, with the test's kubeconfig)
watching only the test's namespace, and its own ResourcePool on the fake a100 nodes.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from operators import OperatorProcess

from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION
from assay.contract import failure_message, result_message
from assay.controller.admission.server import local_configuration_name
from assay.controller.settings import OperatorSettings
from support import FakePods, wait_until
from support.cluster import REPO_ROOT

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
A100 = {"gpu.example.com/type": "a100-80g"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
TIMEOUT = 30.0
# Checking that nothing changes needs a window past the latest write the operator may defer: a progress
# write waits up to status_detail_interval_seconds, after a reconcile batch window.
QUIET_SECONDS = (
    OperatorSettings().status_detail_interval_seconds + OperatorSettings().reconcile_batch_seconds + 1.0
)


@pytest.fixture
def operator(assay_crds: None, kube: Path, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """``assay-operator`` watching the test's namespace, stopped (and its log shown on failure) after."""
    process = OperatorProcess.start("main", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    wait_until(
        lambda: "Assay controller started" in process.log() or not process.alive(),
        timeout=TIMEOUT,
        what="the operator to start",
    )
    assert process.alive(), process.log()
    try:
        yield process
    finally:
        process.stop()
        print(process.log()[-6000:])  # shown by pytest when the test failed


@pytest.fixture
def make_pool(custom_objects: client.CustomObjectsApi) -> Iterator[Callable[..., str]]:
    """Creates a ResourcePool on the a100 fake nodes (unique name), deleted after the test."""
    created: list[str] = []

    def make(name: str | None = None, **spec: Any) -> str:
        name = name or f"t-{secrets.token_hex(4)}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ResourcePool",
            "metadata": {"name": name},
            "spec": {
                "nodeSelector": A100,
                "tolerations": [GPU_TOLERATION],
                "resources": [
                    # No GPU unless a test asks: the fake GPUs are shared with other tests.
                    {"name": "nvidia.com/gpu", "default": "0", "max": "8"},
                    {"name": "cpu", "default": "1", "max": "16"},
                    {"name": "memory", "default": "1Gi"},
                ],
                "pricing": {"currency": "USD", "perHour": {"nvidia.com/gpu": "2.50"}},
                **spec,
            },
        }
        custom_objects.create_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, body)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            custom_objects.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
        except ApiException as exc:
            if exc.status != 404:
                raise


class Evaluations:
    """Create, read and change Evaluations of one namespace."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace

    def create(
        self, name: str, pool: str, *, labels: dict[str, str] | None = None, **spec: Any
    ) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Evaluation",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels or {}},
            "spec": {
                "pool": pool,
                "model": {"name": "mnist-cnn", "version": "v3", "uri": "file:///models/mnist"},
                "handler": "mnist_eval:Evaluator",
                "dataset": {"name": "mnist-test", "version": "v1", "uri": "file:///data/mnist"},
                "runtime": {"image": "assay-runtime:test"},
                **spec,
            },
        }
        result: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, EVALUATION_PLURAL, body
        )
        return result

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, EVALUATION_PLURAL, name
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch_spec(self, name: str, **spec: Any) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, EVALUATION_PLURAL, name, {"spec": spec}
        )

    def wait_phase(self, name: str, phase: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.status(name)).get("phase") == phase and s,
            timeout=timeout,
            what=f"evaluation {name} to be {phase}",
            last_seen=lambda: json.dumps(self.status(name))[:2000],
        )


@pytest.fixture
def evaluations(custom_objects: client.CustomObjectsApi, namespace: str) -> Evaluations:
    return Evaluations(custom_objects, namespace)


class WriteRecorder:
    """Watches one Evaluation and records every version of it, to count and inspect the writes."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str, name: str) -> None:
        self.versions: list[dict[str, Any]] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(api, namespace, name), daemon=True)
        self._thread.start()

    def _run(self, api: client.CustomObjectsApi, namespace: str, name: str) -> None:
        stream = self._watch.stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            EVALUATION_PLURAL,
            field_selector=f"metadata.name={name}",
            timeout_seconds=120,
        )
        try:
            for event in stream:
                self.versions.append(event["object"])
        except Exception:  # the stream ends when stopped; what was recorded is what counts
            return

    def stop(self) -> list[dict[str, Any]]:
        self._watch.stop()
        return self.versions


def jobs_of(batch_v1: client.BatchV1Api, namespace: str, evaluation: str) -> dict[str, client.V1Job]:
    jobs = batch_v1.list_namespaced_job(namespace, label_selector=f"assay.dev/evaluation={evaluation}").items
    return {job.metadata.name: job for job in jobs}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def pool_condition(api: client.CustomObjectsApi, pool: str, type_: str) -> dict[str, Any]:
    return condition(
        api.get_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, pool).get("status") or {}, type_
    )


def selector(evaluation: str, step: str) -> str:
    return f"assay.dev/evaluation={evaluation},assay.dev/step={step}"


def test_evaluation_runs_from_apply_to_summary(
    operator: OperatorProcess,
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    pool = make_pool(quota={"nvidia.com/gpu": "16"})
    recorder = WriteRecorder(custom_objects, namespace, "mnist")
    evaluations.create("mnist", pool, tasks=3, resources={"nvidia.com/gpu": "2"})

    # Jobs with the pool's placement and the GPU requests.
    predict = wait_until(
        lambda: jobs_of(batch_v1, namespace, "mnist").get("mnist-predict"),
        timeout=TIMEOUT,
        what="the predict Job",
    )
    assert (predict.spec.completions, predict.spec.parallelism, predict.spec.completion_mode) == (
        3,
        3,
        "Indexed",
    )
    template = predict.spec.template.spec
    assert template.node_selector == A100
    assert any(t.key == "nvidia.com/gpu" for t in template.tolerations)
    (container,) = template.containers
    assert container.resources.requests["nvidia.com/gpu"] == "2"
    assert container.resources.limits["nvidia.com/gpu"] == "2"
    assert predict.metadata.owner_references[0].kind == "Evaluation"

    # Pods on the pool's nodes; they succeed; the evaluate Job follows.
    pods = fake_pods.wait_running(namespace, selector("mnist", "predict"), count=3)
    nodes = {n.metadata.name: n for n in core_v1.list_node().items}
    assert all(
        nodes[p.spec.node_name].metadata.labels.get("gpu.example.com/type") == "a100-80g" for p in pods
    )
    running = evaluations.wait_phase("mnist", "Running")
    assert condition(running, "Accepted")["status"] == "True"
    usage = wait_until(
        lambda: (
            custom_objects.get_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, pool)
            .get("status", {})
            .get("inUse", {})
            .get("nvidia.com/gpu")
            == "6"
            and custom_objects.get_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, pool)["status"]
        ),
        timeout=TIMEOUT,
        what="the pool's inUse to count the running tasks",
    )
    assert usage["capacity"]["nvidia.com/gpu"] == "32"  # 4 fake a100 nodes x 8
    for pod in pods:
        fake_pods.succeed(namespace, pod.metadata.name)
    (evaluate,) = fake_pods.wait_running(namespace, selector("mnist", "evaluate"))
    summary = {"accuracy": 0.9912, "macro avg/f1": 0.991}
    fake_pods.succeed(namespace, evaluate.metadata.name, message=result_message(summary, records=10000))

    waited = kubectl(
        "wait", "-n", namespace, "--for=condition=Succeeded", "--timeout=30s", "evaluation/mnist"
    )
    assert waited.returncode == 0, waited.stderr
    status = evaluations.status("mnist")
    assert status["phase"] == "Succeeded"
    assert status["results"]["summary"] == summary
    assert status["results"]["records"] == 10000
    counts = {"total": 4, "pending": 0, "running": 0, "succeeded": 4, "failed": 0, "skipped": 0}
    assert status["taskCounts"] == counts
    assert {t["node"] for t in status["tasks"]} <= set(nodes)
    assert float(status["cost"]["estimatedMax"]) == 2.5 * 6  # 6 GPUs for the default hour

    # Events on phase changes only, and no status write once nothing changes.
    def event_reasons() -> list[str]:
        events = core_v1.list_namespaced_event(namespace, field_selector="involvedObject.name=mnist").items
        return sorted(e.reason for e in events)

    expected: list[str] = []  # the expected course (a first start, success) posts none
    wait_until(
        lambda: event_reasons() == expected,
        timeout=TIMEOUT,
        what=f"events {expected}",
        last_seen=event_reasons,
    )
    version = evaluations.get("mnist")["metadata"]["resourceVersion"]
    time.sleep(QUIET_SECONDS)  # past the latest a deferred progress write would come
    assert evaluations.get("mnist")["metadata"]["resourceVersion"] == version
    assert event_reasons() == expected
    # Every write the Evaluation got changed its status (kopf itself wrote nothing: no annotations, no
    # finalizer), and there were only a handful for 4 tasks (per-task detail is batched).
    versions = recorder.stop()
    assert versions[-1]["metadata"]["resourceVersion"] == version
    statuses = [v.get("status") for v in versions]
    assert all(a != b for a, b in itertools.pairwise(statuses)), "a write changed nothing"
    assert not [k for v in versions for k in v["metadata"].get("annotations", {}) if "kopf" in k]
    assert not [v for v in versions if v["metadata"].get("finalizers")]
    print(f"{len(versions)} versions of the Evaluation (1 create + status writes)")
    assert len(versions) <= 12
    # The metrics follow the phase.
    assert operator.total("assay_evaluations", pool=pool, phase="Succeeded") == 1
    assert operator.total("assay_evaluations", pool=pool, phase="Running") == 0


@pytest.mark.usefixtures("operator")
def test_task_failing_past_its_retries_fails_the_evaluation(
    make_pool: Callable[..., str], evaluations: Evaluations, fake_pods: FakePods, namespace: str
) -> None:
    pool = make_pool()
    evaluations.create("broken", pool, tasks=2, backoffLimitPerTask=1)
    fake_pods.wait_running(namespace, selector("broken", "predict"), count=2)
    message = failure_message("HandlerFailed", "record 17: ZeroDivisionError")
    failed: list[str] = []
    for attempt in range(2):
        pod = wait_until(
            lambda: [
                p
                for p in fake_pods.list(namespace, selector("broken", "predict"))
                if p.metadata.labels.get("batch.kubernetes.io/job-completion-index") == "1"
                and p.status.phase == "Running"
                and p.metadata.name not in failed
            ],
            timeout=TIMEOUT,
            what=f"attempt {attempt + 1} of task predict/1",
        )[0]
        fake_pods.fail(namespace, pod.metadata.name, exit_code=12, message=message)
        failed.append(pod.metadata.name)
    status = evaluations.wait_phase("broken", "Failed")
    assert condition(status, "Failed")["reason"] == "TaskFailed"
    assert "task predict/1" in status["message"]
    assert "exit code 12" in status["message"]
    assert "record 17" in status["message"]
    failed = next(t for t in status["tasks"] if t["step"] == "predict" and t["index"] == 1)
    assert (failed["phase"], failed["exitCode"], failed["attempts"], failed["reason"]) == (
        "Failed",
        12,
        2,
        "HandlerFailed",
    )


@pytest.mark.usefixtures("operator")
def test_unschedulable_tasks_are_reported_not_running(
    make_pool: Callable[..., str], evaluations: Evaluations, namespace: str
) -> None:
    pool = make_pool(nodeSelector={"gpu.example.com/type": "h100-does-not-exist"})
    evaluations.create("stuck", pool)
    status = wait_until(
        lambda: (
            condition(s := evaluations.status("stuck"), "Scheduled").get("reason") == "Unschedulable" and s
        ),
        timeout=TIMEOUT,
        what="the Scheduled condition to say Unschedulable",
    )
    assert status["phase"] == "Running"
    assert condition(status, "Running")["status"] == "False"
    (task,) = status["tasks"]
    assert (task["phase"], task["reason"]) == ("Pending", "Unschedulable")
    assert "node" in task["message"]


@pytest.mark.usefixtures("operator")
def test_queued_until_quota_frees_and_cancel(
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    pool = make_pool(quota={"nvidia.com/gpu": "4"})
    evaluations.create("first", pool, tasks=2, resources={"nvidia.com/gpu": "2"})
    fake_pods.wait_running(namespace, selector("first", "predict"), count=2)
    evaluations.create("second", pool, tasks=2, resources={"nvidia.com/gpu": "2"})
    queued = evaluations.wait_phase("second", "Queued")
    assert queued["queuePosition"] == 1
    assert condition(queued, "Queued")["reason"] == "WaitingForQuota"
    assert "nvidia.com/gpu 4 of 4 in use" in queued["message"]
    assert "second-predict" not in jobs_of(batch_v1, namespace, "second")
    wait_until(
        lambda: (
            custom_objects.get_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, pool)
            .get("status", {})
            .get("queuedEvaluations")
            == 1
        ),
        timeout=TIMEOUT,
        what="the pool to show one queued evaluation",
    )

    evaluations.patch_spec("first", cancel=True)
    cancelled = evaluations.wait_phase("first", "Cancelled")
    assert condition(cancelled, "Cancelled")["status"] == "True"
    wait_until(
        lambda: not jobs_of(batch_v1, namespace, "first"), timeout=TIMEOUT, what="first's Jobs deleted"
    )
    # Its quota is free: the second starts.
    evaluations.wait_phase("second", "Running")
    fake_pods.wait_running(namespace, selector("second", "predict"), count=2)
    assert evaluations.status("first")["phase"] == "Cancelled"  # the record stays


@pytest.mark.usefixtures("operator")
def test_suspend_and_resume(
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = make_pool()
    evaluations.create("paused", pool, tasks=2)
    fake_pods.wait_running(namespace, selector("paused", "predict"), count=2)
    # autoReleaseSeconds may change while running: expiresAt and the Jobs' own deadline follow.
    before = wait_until(
        lambda: (st := evaluations.status("paused")).get("expiresAt") and st,
        timeout=TIMEOUT,
        what="expiresAt once the first task started",
    )
    evaluations.patch_spec("paused", autoReleaseSeconds=7200)
    wait_until(
        lambda: jobs_of(batch_v1, namespace, "paused")["paused-predict"].spec.active_deadline_seconds == 7260,
        timeout=TIMEOUT,
        what="the Job's activeDeadlineSeconds to follow autoReleaseSeconds",
    )
    wait_until(
        lambda: evaluations.status("paused")["expiresAt"] > before["expiresAt"],
        timeout=TIMEOUT,
        what="expiresAt to move with autoReleaseSeconds",
    )
    evaluations.patch_spec("paused", suspend=True)
    status = evaluations.wait_phase("paused", "Suspended")
    assert condition(status, "Suspended")["status"] == "True"
    assert jobs_of(batch_v1, namespace, "paused")["paused-predict"].spec.suspend is True
    wait_until(
        lambda: (
            not [
                p
                for p in fake_pods.list(namespace, selector("paused", "predict"))
                if p.status.phase == "Running"
            ]
        ),
        timeout=TIMEOUT,
        what="the suspended tasks' pods to stop",
    )
    evaluations.patch_spec("paused", suspend=False)
    status = evaluations.wait_phase("paused", "Running")
    assert condition(status, "Suspended") == {
        **condition(status, "Suspended"),
        "status": "False",
        "reason": "Resumed",
    }
    assert jobs_of(batch_v1, namespace, "paused")["paused-predict"].spec.suspend is False
    fake_pods.wait_running(namespace, selector("paused", "predict"), count=2)


@pytest.mark.usefixtures("operator")
def test_rejected_without_a_webhook(
    make_pool: Callable[..., str], evaluations: Evaluations, batch_v1: client.BatchV1Api, namespace: str
) -> None:
    late_pool = f"t-late-{secrets.token_hex(3)}"
    evaluations.create("lost", late_pool)
    lost = wait_until(
        lambda: condition(s := evaluations.status("lost"), "Accepted").get("status") == "False" and s,
        timeout=TIMEOUT,
        what="Accepted=False on an Evaluation naming an unknown pool",
    )
    assert condition(lost, "Accepted")["reason"] == "UnknownPool"
    assert lost["phase"] == "Pending"

    elsewhere = make_pool(namespaces=["some-other-team"])
    evaluations.create("forbidden", elsewhere)
    forbidden = wait_until(
        lambda: condition(s := evaluations.status("forbidden"), "Accepted").get("status") == "False" and s,
        timeout=TIMEOUT,
        what="Accepted=False on an Evaluation in a namespace the pool does not allow",
    )
    assert condition(forbidden, "Accepted")["reason"] == "PoolForbidden"

    pool = make_pool()
    evaluations.create("greedy", pool, resources={"nvidia.com/gpu": "9"})
    greedy = evaluations.wait_phase("greedy", "Failed")
    assert condition(greedy, "Accepted")["reason"] == "ResourcesOutOfRange"
    assert "nvidia.com/gpu" in condition(greedy, "Accepted")["message"]
    assert not jobs_of(batch_v1, namespace, "forbidden")
    assert not jobs_of(batch_v1, namespace, "greedy")
    # An unknown pool is not final: once an admin creates it, the Evaluation starts.
    assert not jobs_of(batch_v1, namespace, "lost")
    make_pool(name=late_pool)
    started = evaluations.wait_phase("lost", "Running")
    assert condition(started, "Accepted")["status"] == "True"


@pytest.mark.usefixtures("operator")
def test_a_pool_may_refuse_unlisted_resources_and_warns_of_gpus_it_does_not_bound(
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    custom_objects: client.CustomObjectsApi,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    # The a100 fake nodes offer nvidia.com/gpu; this pool neither lists nor refuses it.
    careless = make_pool(resources=[{"name": "cpu", "default": "1", "max": "16"}])
    # An operator that watches one namespace writes the status of pools its Evaluations use.
    evaluations.create("user", careless)
    warning = wait_until(
        lambda: (
            (c := pool_condition(custom_objects, careless, "GPUsUnbounded")).get("status") == "True" and c
        ),
        timeout=TIMEOUT,
        what="condition GPUsUnbounded on a GPU pool that does not list its GPUs",
    )
    assert warning["reason"] == "GPUsNotListed"
    assert "nvidia.com/gpu" in warning["message"]

    strict = make_pool(unlistedResources="Refuse")
    evaluations.create("exotic", strict, resources={"example.com/fpga": "1"})
    refused = evaluations.wait_phase("exotic", "Failed")
    accepted = condition(refused, "Accepted")
    assert accepted["reason"] == "ResourceNotListed"
    assert "example.com/fpga" in accepted["message"] and strict in accepted["message"]
    assert not jobs_of(batch_v1, namespace, "exotic")
    assert pool_condition(custom_objects, strict, "GPUsUnbounded").get("status") != "True"


def debug_password_volume(pod: client.V1PodSpec) -> client.V1SecretVolumeSource:
    """The Secret volume a task pod reads its debug password from, checked to be the only way it gets it: one
    key as the file /assay/debug/password, mounted read-only, its path in ASSAY_DEBUG_PASSWORD_FILE, and no
    variable filled from a Secret (the kernel keeps a process's variables in /proc/<pid>/environ)."""
    (container,) = pod.containers
    env = {e.name: e for e in container.env or []}
    assert env["ASSAY_DEBUG_PASSWORD_FILE"].value == "/assay/debug/password"
    assert not [e.name for e in env.values() if e.value_from is not None and e.value_from.secret_key_ref]
    (volume,) = [v for v in pod.volumes or [] if v.secret is not None]
    (mount,) = [m for m in container.volume_mounts or [] if m.name == volume.name]
    assert (mount.mount_path, mount.read_only) == ("/assay/debug", True)
    assert [item.path for item in volume.secret.items] == ["password"]
    return volume.secret


def test_debug_password_never_appears_in_what_the_operator_writes(
    operator: OperatorProcess,
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = make_pool()
    evaluations.create("debugged", pool, debug={"enabled": True})
    fake_pods.wait_running(namespace, "assay.dev/evaluation=debugged")
    status = evaluations.wait_phase("debugged", "Running")
    assert status["debug"] == {"service": "debugged-debug", "port": 8000, "passwordSecret": "debugged-debug"}
    secret = core_v1.read_namespaced_secret("debugged-debug", namespace)
    assert secret.metadata.owner_references[0].name == "debugged"
    password = base64.b64decode(secret.data["password"]).decode()
    assert len(password) >= 16
    service = core_v1.read_namespaced_service("debugged-debug", namespace)
    assert service.spec.type == "ClusterIP"
    assert service.spec.ports[0].port == 8000
    (job,) = jobs_of(batch_v1, namespace, "debugged").values()
    assert debug_password_volume(job.spec.template.spec).secret_name == "debugged-debug"
    (pod,) = fake_pods.list(namespace, "assay.dev/evaluation=debugged")
    assert debug_password_volume(pod.spec).secret_name == "debugged-debug"

    written = [
        json.dumps(evaluations.get("debugged")),
        json.dumps(client.ApiClient().sanitize_for_serialization(job)),
        json.dumps([e.message for e in core_v1.list_namespaced_event(namespace).items]),
        json.dumps(
            [
                client.ApiClient().sanitize_for_serialization(p)
                for p in core_v1.list_namespaced_pod(namespace).items
            ]
        ),
        operator.log(),
        operator.scrape() or "",
    ]
    for text in written:
        assert password not in text


def test_restarted_operator_creates_no_duplicate_and_loses_no_status(
    operator: OperatorProcess,
    kube: Path,
    tmp_path: Path,
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = make_pool()
    evaluations.create("durable", pool, tasks=2)
    pods = fake_pods.wait_running(namespace, selector("durable", "predict"), count=2)
    fake_pods.succeed(namespace, pods[0].metadata.name)
    before = wait_until(
        lambda: (s := evaluations.status("durable")).get("taskCounts", {}).get("succeeded") == 1 and s,
        timeout=TIMEOUT,
        what="one predict task to be recorded as succeeded",
    )
    job_uid = jobs_of(batch_v1, namespace, "durable")["durable-predict"].metadata.uid

    operator.kill()  # SIGKILL: no clean-up at all
    restarted = OperatorProcess.start("restarted", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    try:
        wait_until(lambda: "Assay controller started" in restarted.log(), timeout=TIMEOUT, what="the restart")
        wait_until(
            lambda: restarted.total("assay_evaluations", pool=pool, phase="Running") == 1,
            timeout=TIMEOUT,
            what="the restarted operator to reconcile what it found",
        )
        jobs = jobs_of(batch_v1, namespace, "durable")
        assert list(jobs) == ["durable-predict"]
        assert jobs["durable-predict"].metadata.uid == job_uid
        after = evaluations.status("durable")
        assert after["phase"] == "Running"
        assert after["startTime"] == before["startTime"]
        assert [t["phase"] for t in after["tasks"]] == [t["phase"] for t in before["tasks"]]
        fake_pods.succeed(namespace, pods[1].metadata.name)
        (evaluate,) = fake_pods.wait_running(namespace, selector("durable", "evaluate"))
        fake_pods.succeed(namespace, evaluate.metadata.name, message=result_message({"accuracy": 0.5}))
        done = evaluations.wait_phase("durable", "Succeeded")
        assert done["results"]["summary"] == {"accuracy": 0.5}
        assert len(jobs_of(batch_v1, namespace, "durable")) == 2
    finally:
        restarted.stop()
        print(restarted.log()[-4000:])


@pytest.mark.usefixtures("operator")
def test_auto_release_expires_and_frees_the_pods(
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    # 60 s is the shortest auto-release the API allows.
    pool = make_pool()
    evaluations.create("brief", pool, tasks=2, autoReleaseSeconds=60)
    fake_pods.wait_running(namespace, selector("brief", "predict"), count=2)
    wait_until(
        lambda: evaluations.status("brief").get("expiresAt"),
        timeout=TIMEOUT,
        what="expiresAt once the first task started",
    )
    expired = evaluations.wait_phase("brief", "Expired", timeout=90)
    assert condition(expired, "Expired")["reason"] == "AutoReleased"
    assert all(t["phase"] == "Stopped" for t in expired["tasks"])
    wait_until(lambda: not jobs_of(batch_v1, namespace, "brief"), timeout=TIMEOUT, what="the Jobs deleted")
    wait_until(
        lambda: not fake_pods.list(namespace, "assay.dev/evaluation=brief"),
        timeout=TIMEOUT,
        what="the pods gone",
    )


def webhook_refusal(evaluations: Evaluations, pool: str) -> ApiException | None:
    """The webhook's 422 for an Evaluation asking more GPUs than the pool allows; None while the apiserver
    cannot reach the webhook yet. Admitted is a failure: failurePolicy Fail never lets it through."""
    try:
        evaluations.create("greedy", pool, resources={"nvidia.com/gpu": "9"})
    except ApiException as exc:
        return exc if exc.status == 422 else None
    raise AssertionError("an Evaluation over the pool's maximum was admitted")


@pytest.mark.usefixtures("operator")
def test_an_expired_debug_run_reports_the_summary_its_handler_finished_with(
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = make_pool()
    evaluations.create("inspected", pool, debug={"enabled": True}, autoReleaseSeconds=60)
    (pod,) = fake_pods.wait_running(namespace, "assay.dev/evaluation=inspected")
    # The handler has finished; the runner waits to be stopped, then exits 0 with the summary.
    fake_pods.report_on_stop(namespace, pod.metadata.name, result_message({"accuracy": 0.75}, records=3))
    expired = evaluations.wait_phase("inspected", "Expired", timeout=90)
    assert condition(expired, "Expired")["reason"] == "AutoReleased"
    reported = wait_until(
        lambda: (s := evaluations.status("inspected")).get("results") and s,
        timeout=TIMEOUT,
        what="the summary of the stopped debug pod in the status",
        last_seen=lambda: json.dumps(evaluations.status("inspected"))[:2000],
    )
    assert reported["phase"] == "Expired"
    assert reported["results"]["summary"] == {"accuracy": 0.75}
    assert reported["results"]["records"] == 3
    wait_until(
        lambda: not jobs_of(batch_v1, namespace, "inspected"), timeout=TIMEOUT, what="the Jobs deleted"
    )


@pytest.mark.usefixtures("operator")
def test_a_debug_run_of_several_tasks_goes_on_to_its_evaluate_step(
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    namespace: str,
) -> None:
    """In debug mode the predict tasks end after their work (only the final step's pod stays up, see
    test_runner_process_debug.py): their Job completes and the evaluate step starts, behind the same password,
    and it is the one that stays up until it is stopped."""
    pool = make_pool()
    evaluations.create("stepwise", pool, tasks=2, debug={"enabled": True}, autoReleaseSeconds=60)
    shards = fake_pods.finish_all(namespace, selector("stepwise", "predict"), "succeed", count=2)
    for shard in shards:
        assert debug_password_volume(shard.spec).secret_name == "stepwise-debug"
        fake_pods.wait_phase(namespace, shard.metadata.name, ["Succeeded"])
    (evaluate,) = fake_pods.wait_running(namespace, selector("stepwise", "evaluate"))
    assert debug_password_volume(evaluate.spec).secret_name == "stepwise-debug"
    running = wait_until(
        lambda: (s := evaluations.status("stepwise")).get("taskCounts", {}).get("succeeded") == 2 and s,
        timeout=TIMEOUT,
        what="both predict tasks recorded as succeeded while the evaluate task runs",
        last_seen=lambda: json.dumps(evaluations.status("stepwise"))[:2000],
    )
    assert running["phase"] == "Running"
    assert running["debug"]["service"] == "stepwise-debug"
    fake_pods.report_on_stop(namespace, evaluate.metadata.name, result_message({"accuracy": 0.5}, records=4))
    reported = wait_until(
        lambda: (s := evaluations.status("stepwise")).get("results") and s,
        timeout=90,
        what="the summary of the stopped evaluate pod at auto-release",
        last_seen=lambda: json.dumps(evaluations.status("stepwise"))[:2000],
    )
    assert reported["phase"] == "Expired"
    assert reported["results"]["summary"] == {"accuracy": 0.5}


def test_an_evicted_attempt_counts_though_its_pod_was_never_seen_beside_the_next(
    operator: OperatorProcess,
    kube: Path,
    tmp_path: Path,
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    core_v1: client.CoreV1Api,
    namespace: str,
) -> None:
    pool = make_pool()
    evaluations.create("evicted", pool)
    (first,) = fake_pods.wait_running(namespace, "assay.dev/evaluation=evicted")
    wait_until(
        lambda: evaluations.status("evicted").get("tasks", [{}])[0].get("pod") == first.metadata.name,
        timeout=TIMEOUT,
        what="the first attempt in the status",
    )
    # The operator is down while the pod is evicted and replaced: it sees only the replacement.
    operator.kill()
    name = first.metadata.name
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
    core_v1.create_namespaced_pod_eviction(name, namespace, eviction)
    (second,) = wait_until(
        lambda: [
            p
            for p in fake_pods.list(namespace, "assay.dev/evaluation=evicted")
            if p.metadata.name != name and p.status.phase == "Running"
        ],
        timeout=TIMEOUT,
        what="the Job to replace the evicted pod",
    )
    wait_until(
        lambda: (
            name not in {p.metadata.name for p in fake_pods.list(namespace, "assay.dev/evaluation=evicted")}
        ),
        timeout=TIMEOUT,
        what="the evicted pod gone",
    )
    restarted = OperatorProcess.start("restarted", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    try:
        wait_until(lambda: "Assay controller started" in restarted.log(), timeout=TIMEOUT, what="the restart")
        fake_pods.succeed(namespace, second.metadata.name, message=result_message({"accuracy": 0.5}))
        done = evaluations.wait_phase("evicted", "Succeeded")
        (task,) = done["tasks"]
        assert (task["pod"], task["attempts"]) == (second.metadata.name, 2)
    finally:
        restarted.stop()
        print(restarted.log()[-4000:])


def test_local_webhook_rejects_at_admission(
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    api_client: client.ApiClient,
) -> None:
    """`assay-operator --webhook local`: the apiserver calls the operator at localhost and refuses. Killed,
    its configuration (failurePolicy Fail) refuses creations until it is back; suspend and cancel pass."""
    admission = client.AdmissionregistrationV1Api(api_client)

    def start(name: str) -> OperatorProcess:
        process = OperatorProcess.start(
            name, kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path, extra_args=["--webhook", "local"]
        )
        wait_until(
            lambda: "Serving the admission webhook locally" in process.log(), timeout=TIMEOUT, what="webhook"
        )
        return process

    process = start("webhook")
    try:
        pool = make_pool()
        # The webhook server listens a moment after the configuration is written: until then, Fail refuses.
        refused = wait_until(
            lambda: webhook_refusal(evaluations, pool), timeout=TIMEOUT, what="the webhook to answer"
        )
        assert "nvidia.com/gpu" in str(refused.body)
        with pytest.raises(ApiException) as lost:
            evaluations.create("lost", "no-such-pool-anywhere")
        assert "no-such-pool-anywhere" in str(lost.value.body)
        evaluations.create("fits", pool)
        evaluations.wait_phase("fits", "Running")

        process.kill()
        with pytest.raises(ApiException) as unchecked:
            evaluations.create("unchecked", pool)
        assert "failed calling webhook" in str(unchecked.value.body)
        evaluations.patch_spec("fits", suspend=True)
        evaluations.patch_spec("fits", cancel=True)

        process = start("webhook-again")
        evaluations.wait_phase("fits", "Cancelled")
    finally:
        process.stop()
        print(process.log()[-4000:])
    with pytest.raises(ApiException) as gone:
        admission.read_validating_webhook_configuration(local_configuration_name([namespace]))
    assert gone.value.status == 404, "the local webhook configuration was left behind"


def test_finished_jobs_are_cleaned_up_and_the_record_stays(
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
) -> None:
    """Retention (ASSAY_OPERATOR_JOB_RETENTION_SECONDS, here 1 s): the Jobs go, the status stays."""
    process = OperatorProcess.start(
        "retention",
        kubeconfig=kube,
        namespaces=[namespace],
        log_dir=tmp_path,
        env={"ASSAY_OPERATOR_JOB_RETENTION_SECONDS": "1"},
    )
    try:
        wait_until(lambda: "Assay controller started" in process.log(), timeout=TIMEOUT, what="the operator")
        evaluations.create("once", make_pool())
        (pod,) = fake_pods.wait_running(namespace, selector("once", "all"))
        fake_pods.succeed(namespace, pod.metadata.name, message=result_message({"accuracy": 1.0}))
        done = evaluations.wait_phase("once", "Succeeded")
        wait_until(
            lambda: not jobs_of(batch_v1, namespace, "once"), timeout=TIMEOUT, what="the Job cleaned up"
        )
        time.sleep(QUIET_SECONDS)  # the Job's deletion is reconciled and writes nothing, not even later
        after = evaluations.status("once")
        assert after == done
        assert after["results"]["summary"] == {"accuracy": 1.0}
    finally:
        process.stop()
        print(process.log()[-4000:])


def test_the_optional_kwok_stage_completes_assay_pods_to_a_summary(
    operator: OperatorProcess,
    make_pool: Callable[..., str],
    evaluations: Evaluations,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    # hack/kwok/optional/assay-pods-succeed.yaml (make cluster-up KWOK_ASSAY_PODS=succeed), limited to this
    # test's namespace: the other tests' pods stay Running until they are annotated.
    stage = yaml.safe_load((REPO_ROOT / "hack/kwok/optional/assay-pods-succeed.yaml").read_text())
    stage["metadata"]["name"] = f"test-{namespace}"
    stage["spec"]["selector"]["matchExpressions"].append(
        {"key": ".metadata.namespace", "operator": "In", "values": [namespace]}
    )
    custom_objects.create_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "stages", stage)
    try:
        evaluations.create("fake", make_pool(), tasks=2)
        # What a pool's annotations can change: the delay and the evaluate step's message.
        reported = result_message({"accuracy": 0.5}, records=2)
        tuned = make_pool(
            annotations={"kwok.assay.dev/auto-complete-after": "100ms", "kwok.assay.dev/message": reported}
        )
        evaluations.create("tuned", tuned, tasks=1)

        status = evaluations.wait_phase("fake", "Succeeded")
        assert status["results"] == {"summary": {"fake": 1}, "records": 0}
        assert status["taskCounts"]["succeeded"] == 3  # 2 predict tasks and the evaluate step
        predict = core_v1.list_namespaced_pod(namespace, label_selector=selector("fake", "predict")).items
        assert [p.status.container_statuses[0].state.terminated.message for p in predict] == [None, None]
        tuned_status = evaluations.wait_phase("tuned", "Succeeded")
        assert tuned_status["results"]["summary"] == {"accuracy": 0.5}
        assert tuned_status["results"]["records"] == 2
    finally:
        custom_objects.delete_cluster_custom_object(
            "kwok.x-k8s.io", "v1alpha1", "stages", stage["metadata"]["name"]
        )
