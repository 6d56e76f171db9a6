"""Two operator processes with leader election: exactly one acts; when it is killed, the other takes over
within 60 s.

Which process acts is read from the outside: only the acting one reconciles, so only its metrics endpoint
exports evaluation series, and only it creates the Jobs of a new Evaluation.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from operators import OperatorProcess

from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION
from support import wait_until

pytestmark = [pytest.mark.kwok, pytest.mark.timeout(420)]

REPO_ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_LIMIT_S = 60
EVALUATION_LABEL = "assay.dev/evaluation"


@pytest.fixture(scope="module")
def peering_crd(kubectl: Callable[..., Any]) -> None:
    applied = kubectl("apply", "-f", str(REPO_ROOT / "manifests" / "base" / "peering.yaml"))
    assert applied.returncode == 0, applied.stderr
    waited = kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev"
    )
    assert waited.returncode == 0, waited.stderr


@pytest.fixture
def peering_name(custom_objects: client.CustomObjectsApi, peering_crd: None) -> Iterator[str]:
    """A peering of this test's own, so operators of other tests or sessions never pause these."""
    name = f"assay-ha-{secrets.token_hex(3)}"
    yield name
    try:
        custom_objects.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def gpu_pool(
    custom_objects: client.CustomObjectsApi, kwok_nodes: list[str], assay_crds: None
) -> Iterator[str]:
    """A pool of the fake A100 nodes, with room for every task these tests start."""
    name = f"ha-{secrets.token_hex(3)}"
    custom_objects.create_cluster_custom_object(
        GROUP,
        VERSION,
        POOL_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ResourcePool",
            "metadata": {"name": name},
            "spec": {
                "nodeSelector": {"assay.dev/pool-node": "a100"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "resources": [
                    {"name": "nvidia.com/gpu", "default": "1", "max": "8"},
                    {"name": "cpu", "default": "1", "max": "8"},
                    {"name": "memory", "default": "1Gi", "max": "64Gi"},
                ],
            },
        },
    )
    yield name
    custom_objects.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)


def create_evaluation(custom_objects: client.CustomObjectsApi, namespace: str, name: str, pool: str) -> None:
    custom_objects.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        EVALUATION_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Evaluation",
            "metadata": {"name": name},
            "spec": {
                "pool": pool,
                "model": {"name": "m", "version": "v1", "uri": "pvc://models/m"},
                "handler": "m:Model",
                "dataset": {"name": "d", "uri": "pvc://data/d"},
                "runtime": {"image": "registry.invalid/assay-runner:test"},
                "tasks": 2,
            },
        },
    )


def jobs_of(batch_v1: client.BatchV1Api, namespace: str, evaluation: str) -> list[str]:
    jobs = batch_v1.list_namespaced_job(namespace, label_selector=f"{EVALUATION_LABEL}={evaluation}").items
    return sorted(job.metadata.name for job in jobs)


def peers(custom_objects: client.CustomObjectsApi, peering: str) -> dict[str, Any]:
    """Live keep-alives in the peering object (identity -> {priority, lastseen, lifetime})."""
    try:
        body = custom_objects.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
    except client.ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return {identity: info for identity, info in (body.get("status") or {}).items() if info}


def evaluations_exported(operator: OperatorProcess) -> float:
    return operator.total("assay_evaluations")


def test_one_replica_acts_and_the_other_takes_over_after_a_kill(
    kube: Path,
    namespace: str,
    peering_name: str,
    gpu_pool: str,
    custom_objects: client.CustomObjectsApi,
    batch_v1: client.BatchV1Api,
    tmp_path: Path,
) -> None:
    def start(name: str) -> OperatorProcess:
        return OperatorProcess.start(
            name, kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path, peering=peering_name
        )

    first = start("first")
    second: OperatorProcess | None = None
    try:
        create_evaluation(custom_objects, namespace, "before-second", gpu_pool)
        wait_until(
            lambda: jobs_of(batch_v1, namespace, "before-second"),
            timeout=60,
            what="the first operator to create the Jobs",
            last_seen=first.log,
        )

        second = start("second")
        # Peering is mandatory, so the second starts paused and stays so while the older first is alive:
        # wait until both keep-alives are in the peering object.
        wait_until(
            lambda: len(peers(custom_objects, peering_name)) == 2,
            timeout=60,
            what="both operators in the peering object",
            last_seen=second.log,
        )
        create_evaluation(custom_objects, namespace, "both-running", gpu_pool)
        wait_until(
            lambda: jobs_of(batch_v1, namespace, "both-running"), timeout=60, what="Jobs of both-running"
        )
        wait_until(
            lambda: evaluations_exported(first) == 2, timeout=30, what="the first to export 2 evaluations"
        )
        assert evaluations_exported(second) == 0, "the paused operator reconciled"
        # The waiting replica is live and ready (it serves the webhook and must not be restarted).
        assert second.healthy() and first.healthy()
        assert "Pausing operations" not in first.log(), "the older operator paused"

        first.kill()
        killed_at = time.monotonic()
        create_evaluation(custom_objects, namespace, "after-kill", gpu_pool)
        wait_until(
            lambda: jobs_of(batch_v1, namespace, "after-kill"),
            timeout=TAKEOVER_LIMIT_S + 30,
            what="the second operator to take over and create the Jobs",
            last_seen=second.log,
        )
        takeover_s = time.monotonic() - killed_at
        print(f"takeover after SIGKILL: {takeover_s:.1f} s")
        assert takeover_s < TAKEOVER_LIMIT_S
        assert "Resuming operations" in second.log()
        wait_until(
            lambda: evaluations_exported(second) == 3, timeout=30, what="the second to export 3 evaluations"
        )
        # Taking over re-reads everything and changes nothing the first one made: the same Jobs, no others.
        for evaluation in ("before-second", "both-running", "after-kill"):
            assert len(jobs_of(batch_v1, namespace, evaluation)) == 1, jobs_of(
                batch_v1, namespace, evaluation
            )
    finally:
        for operator in (first, second):
            if operator is not None:
                operator.stop()


def test_a_leader_that_exits_cleanly_hands_over_at_once(
    kube: Path,
    namespace: str,
    peering_name: str,
    gpu_pool: str,
    custom_objects: client.CustomObjectsApi,
    batch_v1: client.BatchV1Api,
    tmp_path: Path,
) -> None:
    """A rolling update or a drain sends SIGTERM: the leader withdraws its keep-alive on the way out."""
    first = OperatorProcess.start(
        "first", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path, peering=peering_name
    )
    second: OperatorProcess | None = None
    try:
        wait_until(
            lambda: len(peers(custom_objects, peering_name)) == 1, timeout=60, what="the first keep-alive"
        )
        second = OperatorProcess.start(
            "second", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path, peering=peering_name
        )
        wait_until(lambda: len(peers(custom_objects, peering_name)) == 2, timeout=60, what="both keep-alives")
        first.stop()
        stopped_at = time.monotonic()
        create_evaluation(custom_objects, namespace, "after-stop", gpu_pool)
        wait_until(
            lambda: jobs_of(batch_v1, namespace, "after-stop"),
            timeout=TAKEOVER_LIMIT_S,
            what="the second operator to take over",
            last_seen=second.log,
        )
        handover_s = time.monotonic() - stopped_at
        print(f"handover after SIGTERM: {handover_s:.1f} s")
        assert handover_s < 15
    finally:
        for operator in (first, second):
            if operator is not None:
                operator.stop()


def test_replicas_started_together_never_both_act(
    kube: Path,
    namespace: str,
    peering_name: str,
    gpu_pool: str,
    custom_objects: client.CustomObjectsApi,
    batch_v1: client.BatchV1Api,
    tmp_path: Path,
) -> None:
    """An install or a node restart starts every replica at once: the first to register leads, and the
    others never act, not even for a moment (a replica that acted and then paused logs "Pausing")."""
    replicas = [
        OperatorProcess.start(
            name, kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path, peering=peering_name
        )
        for name in ("one", "two", "three")
    ]
    try:
        wait_until(
            lambda: len(peers(custom_objects, peering_name)) == 3, timeout=60, what="three keep-alives"
        )
        create_evaluation(custom_objects, namespace, "started-together", gpu_pool)
        wait_until(
            lambda: jobs_of(batch_v1, namespace, "started-together"),
            timeout=60,
            what="the leader to create the Jobs",
        )
        wait_until(
            lambda: [r for r in replicas if evaluations_exported(r) == 1],
            timeout=30,
            what="the leader to export the evaluation",
        )
        acted = [r for r in replicas if evaluations_exported(r) > 0 or "Pausing operations" in r.log()]
        assert len(acted) == 1, {r.name: (evaluations_exported(r), r.log()[-2000:]) for r in replicas}
        # The one that acts is the one with the top priority in the peering object (its log names it).
        top, _ = max(peers(custom_objects, peering_name).items(), key=lambda peer: int(peer[1]["priority"]))
        assert f"({top})" in acted[0].log(), top
    finally:
        for replica in replicas:
            replica.stop()
