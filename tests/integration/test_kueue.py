"""Pools in Kueue mode against the real Kueue manager (v0.17.0, built by hack/build-kueue.sh, run on this
machine by hack/kueue.py) and the real operator, on fake GPU nodes.

Each test gets a ResourceFlavor matching the a100 fake nodes, a ClusterQueue of 8 GPUs open to its namespace
only, and a LocalQueue there; a pool in Kueue mode submits to that LocalQueue. Kueue, not Assay, decides who
runs: the tests read what Kueue decided through the Evaluations' status.
"""

from __future__ import annotations

import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operators import OperatorProcess
from test_operator import (  # noqa: F401 (fixtures)
    A100,
    TIMEOUT,
    Evaluations,
    condition,
    evaluations,
    jobs_of,
    make_pool,
    operator,
    selector,
)

from assay.contract import Step, result_message
from assay.render.names import job_name
from support import FakePods, wait_until
from support.cluster import REPO_ROOT

pytestmark = [pytest.mark.kueue]

KUEUE = ("kueue.x-k8s.io", "v1beta2")
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
SUMMARY = result_message({"accuracy": 0.9})
# Kueue admits within its scheduling cycle; a Job's pods then need the Job controller and kwok.
KUEUE_TIMEOUT = 60.0


@pytest.fixture(scope="session", autouse=True)
def kueue(kube: Path) -> Iterator[None]:
    """Kueue's manager on the cluster: started here (built first if it is not) and stopped after, unless it
    ran already (make kueue-up), then left running. Before any operator starts: it asks once, at start-up,
    whether Kueue is installed."""
    subprocess.run([str(REPO_ROOT / "hack" / "build-kueue.sh")], check=True, timeout=1800)
    script = [sys.executable, str(REPO_ROOT / "hack" / "kueue.py")]
    started = subprocess.run(
        [*script, "up", "--kubeconfig", str(kube)], capture_output=True, text=True, timeout=300, check=False
    )
    assert started.returncode == 0, started.stderr + started.stdout
    started_here = "already up" not in started.stderr
    yield
    if started_here:
        subprocess.run([*script, "down", "--kubeconfig", str(kube)], timeout=120, check=False)


@dataclass(frozen=True)
class Queues:
    """The Kueue objects of one test: flavor, ClusterQueue (8 GPUs), LocalQueue, and priority classes."""

    flavor: str
    cluster_queue: str
    local_queue: str
    low: str
    high: str


class KueueObjects:
    def __init__(self, api: client.CustomObjectsApi) -> None:
        self.api = api
        self.cluster_scoped: list[tuple[str, str]] = []
        self.namespaced: list[tuple[str, str, str]] = []

    def create(self, plural: str, body: dict[str, Any], namespace: str | None = None) -> None:
        body = {"apiVersion": "/".join(KUEUE), **body}
        if namespace is None:
            self.api.create_cluster_custom_object(*KUEUE, plural, body)
            self.cluster_scoped.append((plural, body["metadata"]["name"]))
        else:
            self.api.create_namespaced_custom_object(*KUEUE, namespace, plural, body)
            self.namespaced.append((namespace, plural, body["metadata"]["name"]))

    def cluster_queue(
        self, name: str, flavor: str, namespace: str, gpus: int, cohort: str | None = None
    ) -> None:
        spec: dict[str, Any] = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "preemption": {"withinClusterQueue": "LowerPriority"},
            "resourceGroups": [
                {
                    "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": flavor,
                            "resources": [
                                {"name": "cpu", "nominalQuota": "64"},
                                {"name": "memory", "nominalQuota": "256Gi"},
                                {"name": "nvidia.com/gpu", "nominalQuota": str(gpus)},
                            ],
                        }
                    ],
                }
            ],
        }
        if cohort is not None:
            spec["cohortName"] = cohort
        self.create("clusterqueues", {"kind": "ClusterQueue", "metadata": {"name": name}, "spec": spec})

    def delete_all(self) -> None:
        for namespace, plural, name in reversed(self.namespaced):
            _ignore_gone(self.api.delete_namespaced_custom_object, *KUEUE, namespace, plural, name)
        for plural, name in reversed(self.cluster_scoped):
            _ignore_gone(self.api.delete_cluster_custom_object, *KUEUE, plural, name)


def _ignore_gone(call: Callable[..., Any], *args: str) -> None:
    try:
        call(*args)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def kueue_objects(kueue: None, custom_objects: client.CustomObjectsApi) -> Iterator[KueueObjects]:
    objects = KueueObjects(custom_objects)
    yield objects
    objects.delete_all()


@pytest.fixture
def queues(kueue_objects: KueueObjects, namespace: str) -> Queues:
    suffix = secrets.token_hex(3)
    names = Queues(
        flavor=f"a100-{suffix}",
        cluster_queue=f"gpus-{suffix}",
        local_queue="team-gpus",
        low=f"low-{suffix}",
        high=f"high-{suffix}",
    )
    kueue_objects.create(
        "resourceflavors",
        {"kind": "ResourceFlavor", "metadata": {"name": names.flavor}, "spec": {"nodeLabels": A100}},
    )
    kueue_objects.cluster_queue(names.cluster_queue, names.flavor, namespace, gpus=8)
    kueue_objects.create(
        "localqueues",
        {
            "kind": "LocalQueue",
            "metadata": {"name": names.local_queue},
            "spec": {"clusterQueue": names.cluster_queue},
        },
        namespace,
    )
    for name, value in ((names.low, 10), (names.high, 1000)):
        kueue_objects.create(
            "workloadpriorityclasses",
            {"kind": "WorkloadPriorityClass", "metadata": {"name": name}, "value": value},
        )
    return names


def kueue_pool(make: Callable[..., str], queues: Queues, **admission: Any) -> str:
    return make(admission={"queue": "Kueue", "localQueueName": queues.local_queue, **admission})


def start_8_gpus(made: Evaluations, fake_pods: FakePods, name: str, pool: str) -> client.V1Pod:
    """A one-task Evaluation asking for all 8 GPUs of the ClusterQueue, once its task pod runs."""
    made.create(name, pool, tasks=1, resources={"nvidia.com/gpu": "8"})
    (pod,) = fake_pods.wait_running(made.namespace, selector(name, "all"), timeout=KUEUE_TIMEOUT)
    return pod


def job_suspended(batch_v1: client.BatchV1Api, namespace: str, evaluation: str) -> dict[str, bool]:
    return {name: bool(job.spec.suspend) for name, job in jobs_of(batch_v1, namespace, evaluation).items()}


@pytest.mark.usefixtures("operator")
def test_the_second_8_gpu_evaluation_waits_in_kueue_with_its_message_then_runs(
    make_pool: Callable[..., str],  # noqa: F811
    queues: Queues,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = kueue_pool(make_pool, queues)
    first_pod = start_8_gpus(evaluations, fake_pods, "first", pool)
    evaluations.wait_phase("first", "Running")
    job = jobs_of(batch_v1, namespace, "first")
    assert [j.metadata.labels["kueue.x-k8s.io/queue-name"] for j in job.values()] == [queues.local_queue]

    evaluations.create("second", pool, tasks=1, resources={"nvidia.com/gpu": "8"})
    queued = wait_until(
        lambda: (
            (s := evaluations.status("second")).get("phase") == "Queued"
            and condition(s, "Queued").get("reason") == "Pending"
            and s
        ),
        timeout=KUEUE_TIMEOUT,
        what="second to be Queued with Kueue's reason",
        last_seen=lambda: str(evaluations.status("second"))[:1500],
    )
    message = condition(queued, "Queued")["message"]
    assert f"insufficient unused quota for nvidia.com/gpu in flavor {queues.flavor}" in message
    assert queued["message"].startswith(f"waiting for Kueue: Kueue (LocalQueue {queues.local_queue}):")
    assert job_suspended(batch_v1, namespace, "second") == {job_name("second", Step.ALL, 1): True}

    fake_pods.succeed(namespace, first_pod.metadata.name, message=SUMMARY)
    evaluations.wait_phase("first", "Succeeded")
    fake_pods.wait_running(namespace, selector("second", "all"), timeout=KUEUE_TIMEOUT)
    running = evaluations.wait_phase("second", "Running", timeout=KUEUE_TIMEOUT)
    assert condition(running, "Queued")["reason"] == "AdmittedByKueue"
    assert queues.cluster_queue in condition(running, "Queued")["message"]


@pytest.mark.usefixtures("operator")
def test_a_higher_priority_evaluation_preempts_one_that_reports_it_resumes_and_succeeds(
    make_pool: Callable[..., str],  # noqa: F811
    queues: Queues,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    custom_objects: client.CustomObjectsApi,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = kueue_pool(make_pool, queues, workloadPriorityClassName=queues.low)
    evaluations.create("low", pool, tasks=2, resources={"nvidia.com/gpu": "4"})
    predict = fake_pods.wait_running(namespace, selector("low", "predict"), count=2, timeout=KUEUE_TIMEOUT)
    fake_pods.succeed(namespace, predict[0].metadata.name)
    wait_until(
        lambda: evaluations.status("low").get("taskCounts", {}).get("succeeded") == 1,
        timeout=TIMEOUT,
        what="one predict task of low to be recorded as succeeded",
    )

    evaluations.create(
        "urgent",
        pool,
        labels={PRIORITY_LABEL: queues.high},
        tasks=1,
        resources={"nvidia.com/gpu": "8"},
    )
    (urgent_pod,) = fake_pods.wait_running(namespace, selector("urgent", "all"), timeout=KUEUE_TIMEOUT)
    preempted = evaluations.wait_phase("low", "Suspended", timeout=KUEUE_TIMEOUT)
    assert condition(preempted, "Suspended")["reason"] == "Preempted"
    assert preempted["message"].startswith("preempted by Kueue:")
    assert preempted["taskCounts"]["succeeded"] == 1  # progress kept

    fake_pods.succeed(namespace, urgent_pod.metadata.name, message=SUMMARY)
    evaluations.wait_phase("urgent", "Succeeded")
    (rest,) = fake_pods.wait_running(namespace, selector("low", "predict"), timeout=KUEUE_TIMEOUT)
    evaluations.wait_phase("low", "Running", timeout=KUEUE_TIMEOUT)
    fake_pods.succeed(namespace, rest.metadata.name)
    (evaluate,) = fake_pods.wait_running(namespace, selector("low", "evaluate"), timeout=KUEUE_TIMEOUT)
    fake_pods.succeed(namespace, evaluate.metadata.name, message=SUMMARY)
    done = evaluations.wait_phase("low", "Succeeded", timeout=KUEUE_TIMEOUT)
    assert done["results"]["summary"] == {"accuracy": 0.9}
    assert condition(done, "Suspended")["status"] == "False"


@pytest.mark.usefixtures("operator")
def test_borrowing_from_a_cohort_happens_in_kueue_without_assay_knowing(
    make_pool: Callable[..., str],  # noqa: F811
    queues: Queues,
    kueue_objects: KueueObjects,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    namespace: str,
) -> None:
    # Two ClusterQueues in one cohort: the small one (4 GPUs) borrows the big one's unused 8.
    cohort = f"cohort-{secrets.token_hex(3)}"
    small = f"small-{secrets.token_hex(3)}"
    kueue_objects.cluster_queue(small, queues.flavor, namespace, gpus=4, cohort=cohort)
    kueue_objects.cluster_queue(
        f"lender-{secrets.token_hex(3)}", queues.flavor, namespace, gpus=8, cohort=cohort
    )
    kueue_objects.create(
        "localqueues",
        {"kind": "LocalQueue", "metadata": {"name": "small"}, "spec": {"clusterQueue": small}},
        namespace,
    )
    pool = make_pool(admission={"queue": "Kueue", "localQueueName": "small"})
    pod = start_8_gpus(evaluations, fake_pods, "borrower", pool)
    running = evaluations.wait_phase("borrower", "Running")
    # 8 GPUs from a ClusterQueue of 4: admitted only by borrowing the lender's.
    assert condition(running, "Queued")["message"] == f"admitted by Kueue to ClusterQueue {small}"
    fake_pods.succeed(namespace, pod.metadata.name, message=SUMMARY)
    evaluations.wait_phase("borrower", "Succeeded")


def test_a_restarted_operator_creates_no_duplicate_and_never_unsuspends_a_kueue_held_job(
    operator: OperatorProcess,  # noqa: F811
    kube: Path,
    tmp_path: Path,
    make_pool: Callable[..., str],  # noqa: F811
    queues: Queues,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = kueue_pool(make_pool, queues)
    holder_pod = start_8_gpus(evaluations, fake_pods, "holder", pool)
    evaluations.create("waiter", pool, tasks=1, resources={"nvidia.com/gpu": "8"})
    evaluations.wait_phase("waiter", "Queued", timeout=KUEUE_TIMEOUT)
    uids = {n: j.metadata.uid for n, j in jobs_of(batch_v1, namespace, "waiter").items()}

    operator.kill()  # SIGKILL, mid-wait
    restarted = OperatorProcess.start("restarted", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    try:
        wait_until(lambda: "Assay controller started" in restarted.log(), timeout=TIMEOUT, what="the restart")
        wait_until(
            lambda: restarted.total("assay_evaluations", pool=pool, phase="Queued") == 1,
            timeout=TIMEOUT,
            what="the restarted operator to reconcile the waiting Evaluation",
        )
        assert job_suspended(batch_v1, namespace, "waiter") == {job_name("waiter", Step.ALL, 1): True}
        assert {n: j.metadata.uid for n, j in jobs_of(batch_v1, namespace, "waiter").items()} == uids
        assert evaluations.status("waiter")["phase"] == "Queued"

        fake_pods.succeed(namespace, holder_pod.metadata.name, message=SUMMARY)
        (pod,) = fake_pods.wait_running(namespace, selector("waiter", "all"), timeout=KUEUE_TIMEOUT)
        fake_pods.succeed(namespace, pod.metadata.name, message=SUMMARY)
        evaluations.wait_phase("waiter", "Succeeded", timeout=KUEUE_TIMEOUT)
        assert {n: j.metadata.uid for n, j in jobs_of(batch_v1, namespace, "waiter").items()} == uids
    finally:
        restarted.stop()
        print(restarted.log()[-4000:])


@pytest.mark.usefixtures("operator")
def test_spec_suspend_stops_a_kueue_evaluation_and_resume_runs_it_again(
    make_pool: Callable[..., str],  # noqa: F811
    queues: Queues,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    namespace: str,
) -> None:
    pool = kueue_pool(make_pool, queues)
    start_8_gpus(evaluations, fake_pods, "pausable", pool)
    evaluations.patch_spec("pausable", suspend=True)
    suspended = evaluations.wait_phase("pausable", "Suspended")
    assert condition(suspended, "Suspended")["reason"] == "Suspended"
    wait_until(
        lambda: (
            not [
                p
                for p in fake_pods.list(namespace, selector("pausable", "all"))
                if p.status.phase == "Running"
            ]
        ),
        timeout=KUEUE_TIMEOUT,
        what="the suspended Evaluation's pod to stop",
    )
    evaluations.patch_spec("pausable", suspend=False)
    fake_pods.wait_running(namespace, selector("pausable", "all"), timeout=KUEUE_TIMEOUT)
    evaluations.wait_phase("pausable", "Running", timeout=KUEUE_TIMEOUT)


def _create_to_running(
    made: Evaluations, fake_pods: FakePods, name: str, pool: str
) -> tuple[float, float, client.V1Pod]:
    """Seconds from create to phase Running, and to its task pod Running."""
    start = time.monotonic()
    made.create(name, pool, tasks=1)
    made.wait_phase(name, "Running", timeout=KUEUE_TIMEOUT)
    phase = time.monotonic() - start
    (pod,) = fake_pods.wait_running(made.namespace, selector(name, "all"), timeout=KUEUE_TIMEOUT)
    return phase, time.monotonic() - start, pod


@pytest.mark.usefixtures("operator")
def test_create_to_running_with_and_without_kueue_is_printed(
    make_pool: Callable[..., str],  # noqa: F811
    queues: Queues,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    namespace: str,
) -> None:
    """A figure for the README, not an assertion on time: the median create → Running of 5 one-task
    Evaluations in a Kueue pool and in an Assay pool, one at a time (the rest succeed in between)."""
    pools = {"Assay": make_pool(), "Kueue": kueue_pool(make_pool, queues)}
    phase: dict[str, list[float]] = {mode: [] for mode in pools}
    pod: dict[str, list[float]] = {mode: [] for mode in pools}
    for round_ in range(5):
        for mode, pool in pools.items():
            name = f"{mode.lower()}-{round_}"
            to_phase, to_pod, running = _create_to_running(evaluations, fake_pods, name, pool)
            phase[mode].append(to_phase)
            pod[mode].append(to_pod)
            fake_pods.succeed(namespace, running.metadata.name, message=SUMMARY)
            evaluations.wait_phase(name, "Succeeded")
    for mode in pools:
        print(
            f"{mode} pool, create -> phase Running: median {statistics.median(phase[mode]):.2f} s "
            f"(max {max(phase[mode]):.2f}); -> task pod Running: median {statistics.median(pod[mode]):.2f} s "
            f"(max {max(pod[mode]):.2f})"
        )


@pytest.mark.usefixtures("operator")
def test_partial_admission_runs_the_predict_tasks_that_fit_one_after_another(
    make_pool: Callable[..., str],  # noqa: F811
    queues: Queues,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    # Two predict tasks of 8 GPUs each: 16 do not fit the ClusterQueue's 8, one at a time does.
    pool = kueue_pool(make_pool, queues, minParallelism=1)
    evaluations.create("partial", pool, tasks=2, resources={"nvidia.com/gpu": "8"})
    (first,) = fake_pods.wait_running(namespace, selector("partial", "predict"), timeout=KUEUE_TIMEOUT)
    predict = jobs_of(batch_v1, namespace, "partial")[job_name("partial", Step.PREDICT, 2)]
    assert (predict.spec.completions, predict.spec.parallelism) == (2, 1)  # Kueue admitted one at a time
    fake_pods.succeed(namespace, first.metadata.name)
    second = wait_until(
        lambda: [
            p
            for p in fake_pods.list(namespace, selector("partial", "predict"))
            if p.status.phase == "Running" and p.metadata.name != first.metadata.name
        ],
        timeout=KUEUE_TIMEOUT,
        what="the second predict task to run",
    )
    fake_pods.succeed(namespace, second[0].metadata.name)
    (evaluate,) = fake_pods.wait_running(namespace, selector("partial", "evaluate"), timeout=KUEUE_TIMEOUT)
    fake_pods.succeed(namespace, evaluate.metadata.name, message=SUMMARY)
    assert (
        evaluations.wait_phase("partial", "Succeeded", timeout=KUEUE_TIMEOUT)["taskCounts"]["succeeded"] == 3
    )
