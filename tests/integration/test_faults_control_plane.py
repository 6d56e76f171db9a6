"""Faults of the cluster itself, with many Evaluations in flight: kube-apiserver restarted, etcd restarted, a
fake node deleted while tasks run on it. Nothing may be lost (the same checks as test_faults.py).

They restart the control plane, so they run only on a cluster of their own: ``make test-chaos`` starts the
chaos cluster (tests/chaos/cluster.sh), sets ``ASSAY_KUBECONFIG`` and ``ASSAY_CHAOS_CLUSTER`` (its kwokctl
name), runs them and stops it. Elsewhere they are skipped. Each prints a ``FAULTS {...}`` line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from faults import JobLedger, Plan, PlanDriver, mixed_plans, restart_component
from kubernetes import client
from test_faults import (
    TERMINAL,
    check_nothing_lost,
    create_all,
    drive_to_the_end,
    phases,
    report,
    start_operator,
    wait_started,
)
from test_operator import Evaluations, evaluations, make_pool  # noqa: F401 (fixtures)

from support import wait_until

CHAOS_CLUSTER = os.environ.get("ASSAY_CHAOS_CLUSTER", "")
KWOKCTL = (
    Path(os.environ.get("ASSAY_CACHE", Path.home() / ".cache" / "assay")) / "kwok" / "v0.8.0" / "kwokctl"
)

pytestmark = pytest.mark.skipif(
    not CHAOS_CLUSTER,
    reason="restarts kube-apiserver and etcd: runs on a cluster of its own with `make test-chaos`",
)


def _kwokctl() -> str:
    found = sorted((KWOKCTL.parent.parent).glob("*/kwokctl"))
    return str(found[-1] if found else KWOKCTL)


def _restart_test(
    component: str,
    restarts: int,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    pool: str,
    records: Evaluations,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
) -> None:
    plans = mixed_plans(12, seed=11)
    ledger = JobLedger(api_client, namespace)
    driver = PlanDriver(core_v1, custom_objects, namespace, {p.name: p for p in plans}, per_step=2)
    operator = start_operator(component, kube, namespace, tmp_path)
    downtimes: list[float] = []
    in_flight: list[int] = []
    try:
        wait_started(operator)
        create_all(records, pool, plans)
        for _ in range(restarts):
            until = time.monotonic() + 4
            while time.monotonic() < until:
                driver.step()
                time.sleep(0.4)
            in_flight.append(sum(1 for ph in phases(records, plans).values() if ph not in TERMINAL))
            downtimes.append(round(restart_component(_kwokctl(), CHAOS_CLUSTER, component), 1))
        driver.per_step = None
        seen = drive_to_the_end(driver, records, plans, timeout=300)
        assert all(ph in TERMINAL for ph in seen.values()), f"not finished: {seen}"
        ledger.stop()
        figures = check_nothing_lost(records, plans, ledger, batch_v1, namespace)
        assert operator.alive(), "the operator exited when the control plane went away"
    finally:
        ledger.stop()
        operator.stop()
        print(operator.log()[-4000:])
    report(
        f"{component}-restart",
        {
            "restarts": restarts,
            "seconds_down": downtimes,
            "in_flight_at_each_restart": in_flight,
            "evaluations_affected": max(in_flight),
            **figures,
        },
    )


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_component_restarted_mid_run_loses_nothing(
    component: str,
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    make_pool: Callable[..., str],  # noqa: F811
    evaluations: Evaluations,  # noqa: F811
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    kwok_nodes: list[str],
) -> None:
    pool = make_pool()
    clients = (api_client, core_v1, batch_v1, custom_objects)
    _restart_test(component, 2, kube, tmp_path, namespace, pool, evaluations, *clients)


def _fake_node(name: str, zone: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "assay.dev/fault-zone": zone},
        },
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
        },
    }


def test_node_deleted_under_running_tasks(
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    make_pool: Callable[..., str],  # noqa: F811
    evaluations: Evaluations,  # noqa: F811
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    kwok_nodes: list[str],
) -> None:
    """Tasks on a node that is deleted are retried on the pool's other node; the Evaluation succeeds."""
    zone = secrets.token_hex(3)
    doomed, spare = f"fault-{zone}-a", f"fault-{zone}-b"
    core_v1.create_node(_fake_node(doomed, zone))
    pool = make_pool(nodeSelector={"assay.dev/fault-zone": zone}, tolerations=[])
    plans = [Plan("orphaned", 3, "succeed")]
    ledger = JobLedger(api_client, namespace)
    operator = start_operator("node", kube, namespace, tmp_path)
    try:
        wait_started(operator)
        evaluations.create(
            "orphaned",
            pool,
            tasks=3,
            backoffLimitPerTask=0,
            resources={"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "0"},
        )
        wait_until(
            lambda: (
                len([p for p in core_v1.list_namespaced_pod(namespace).items if p.status.phase == "Running"])
                >= 3
            ),
            timeout=60,
            what="the 3 tasks to run on the doomed node",
        )
        core_v1.create_node(_fake_node(spare, zone))
        core_v1.delete_node(doomed)
        deleted_at = time.monotonic()
        # The pod garbage collector removes pods of a deleted node (after a 40 s quarantine); the Job
        # controller replaces them on the spare node.
        wait_until(
            lambda: (
                len(
                    [
                        p
                        for p in core_v1.list_namespaced_pod(namespace).items
                        if p.spec.node_name == spare and p.status.phase == "Running"
                    ]
                )
                >= 3
            ),
            timeout=180,
            what="the tasks to run again on the spare node",
        )
        rescheduled_after = round(time.monotonic() - deleted_at, 1)
        driver = PlanDriver(core_v1, custom_objects, namespace, {p.name: p for p in plans})
        seen = drive_to_the_end(driver, evaluations, plans, timeout=120)
        assert seen == {"orphaned": "Succeeded"}, evaluations.status("orphaned")
        status = evaluations.status("orphaned")
        assert status["results"]["summary"] == plans[0].summary
        assert all(t["node"] == spare for t in status["tasks"])
        # Lost with the node is not a failure: no retries were allowed, and none was used up.
        ledger.stop()
        assert not ledger.duplicated_jobs()
        assert operator.alive()
    finally:
        ledger.stop()
        operator.stop()
        for node in (doomed, spare):
            with contextlib.suppress(client.ApiException):
                core_v1.delete_node(node)
        print(operator.log()[-4000:])
    report(
        "node-deleted",
        {
            "nodes_deleted": 1,
            "tasks_on_it": 3,
            "rescheduled_after_s": rescheduled_after,
            "evaluations_affected": 1,
            "lost": 0,
        },
    )
