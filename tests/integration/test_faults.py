"""Faults with many Evaluations in flight: the operator SIGKILLed again and again, watch connections cut,
another writer patching the same objects, pods evicted. Nothing may be lost: every Evaluation reaches the end
its plan says, no Job is created twice, no task gets more pods than its retries allow, every summary is there.

Each test prints a ``FAULTS {...}`` line with its figures (faults injected, evaluations affected, lost).
Faults that restart the control plane are in test_faults_control_plane.py (``make test-chaos``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from faults import (
    ConflictStorm,
    ConnectionCutter,
    JobLedger,
    Plan,
    PlanDriver,
    apiserver_address,
    count_losses,
    mixed_plans,
)
from kubernetes import client
from operators import OperatorProcess
from test_operator import Evaluations, evaluations, make_pool  # noqa: F401 (fixtures)

from support import wait_until

pytestmark = pytest.mark.faults

BACKOFF = 1  # retries per task: a failing task gets 2 pods
TERMINAL = {"Succeeded", "Failed", "Cancelled", "Expired"}
# No GPUs: these tests must not compete with the other tests for the fake nodes' 32 GPUs.
NO_GPU = {"nvidia.com/gpu": "0", "cpu": "100m", "memory": "64Mi"}


def start_operator(name: str, kube: Path, namespace: str, log_dir: Path) -> OperatorProcess:
    return OperatorProcess.start(name, kubeconfig=kube, namespaces=[namespace], log_dir=log_dir)


def wait_started(process: OperatorProcess, timeout: float = 60) -> None:
    wait_until(
        lambda: "Assay controller started" in process.log() or not process.alive(),
        timeout=timeout,
        what=f"operator {process.name} to start",
    )
    assert process.alive(), process.log()[-4000:]


def create_all(records: Evaluations, pool: str, plans: Iterable[Plan]) -> None:
    for plan in plans:
        records.create(plan.name, pool, tasks=plan.tasks, backoffLimitPerTask=BACKOFF, resources=NO_GPU)


def phases(records: Evaluations, plans: Iterable[Plan]) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for plan in plans:
        try:
            result[plan.name] = records.status(plan.name).get("phase")
        except Exception:  # apiserver briefly unavailable
            result[plan.name] = None
    return result


def drive_to_the_end(
    driver: PlanDriver, records: Evaluations, plans: list[Plan], timeout: float
) -> dict[str, str | None]:
    """Drive the fake pods until every planned Evaluation is in a terminal phase."""
    deadline = time.monotonic() + timeout
    while True:
        driver.step()
        seen = phases(records, plans)
        if all(phase in TERMINAL for phase in seen.values()) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def check_nothing_lost(
    records: Evaluations,
    plans: list[Plan],
    ledger: JobLedger,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> dict[str, Any]:
    """Assert every plan's end, no duplicate Job, no extra pod; return the figures (lost and duplicated
    as counted on the cluster by :func:`faults.count_losses`)."""
    losses = count_losses(records.api, batch_v1, namespace, plans, ledger)
    assert not losses.lost, f"evaluations not in their planned phase: {losses.lost}"
    assert not losses.duplicated, f"Jobs created more than once: {losses.duplicated}"
    wrong: dict[str, Any] = {}
    for plan in plans:
        status = records.status(plan.name)
        if plan.outcome == "succeed" and (status.get("results") or {}).get("summary") != plan.summary:
            wrong[plan.name] = f"summary {status.get('results')} instead of {plan.summary}"
        elif plan.outcome == "fail" and "exit code 3" not in (status.get("message") or ""):
            wrong[plan.name] = f"failure message does not name the exit code: {status.get('message')}"
    assert not wrong, f"evaluations that did not end as planned: {json.dumps(wrong, indent=1)}"
    extra = {
        p.name: len(ledger.pod_uids[p.name])
        for p in plans
        if len(ledger.pod_uids[p.name]) > p.pods_at_most(BACKOFF)
    }
    assert not extra, f"evaluations with more pods than their tasks and retries allow: {extra}"
    return {
        "evaluations": len(plans),
        "by_phase": {ph: sum(1 for p in plans if p.phase == ph) for ph in sorted({p.phase for p in plans})},
        "jobs_created": sum(len(u) for u in ledger.job_uids.values()),
        "pods_created": sum(len(u) for u in ledger.pod_uids.values()),
        **losses.figures(),
    }


def report(test: str, figures: dict[str, Any]) -> None:
    print(f"FAULTS {json.dumps({'test': test, **figures})}")


def test_operator_sigkilled_ten_times_loses_nothing(
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
    seed = int(time.time())
    rng = random.Random(seed)
    plans = mixed_plans(18, seed)
    ledger = JobLedger(api_client, namespace)
    # One pod per pass, so that the evaluations stay in flight across all the kills.
    driver = PlanDriver(core_v1, custom_objects, namespace, {p.name: p for p in plans}, per_step=1)
    operator = start_operator("k0", kube, namespace, tmp_path)
    create_all(evaluations, make_pool(), plans)
    in_flight_at_kill: list[int] = []
    try:
        for kill in range(1, 11):
            # A random moment: sometimes while it starts up, mostly while it works.
            until = time.monotonic() + rng.uniform(0.3, 4.0)
            while time.monotonic() < until:
                driver.step()
                time.sleep(0.4)
            in_flight_at_kill.append(
                sum(1 for ph in phases(evaluations, plans).values() if ph not in TERMINAL)
            )
            operator.kill()
            operator = start_operator(f"k{kill}", kube, namespace, tmp_path)
        wait_started(operator)
        driver.per_step = None
        seen = drive_to_the_end(driver, evaluations, plans, timeout=240)
        assert all(ph in TERMINAL for ph in seen.values()), f"not finished: {seen}"
        ledger.stop()
        figures = check_nothing_lost(evaluations, plans, ledger, batch_v1, namespace)
        assert operator.alive()
    finally:
        ledger.stop()
        operator.stop()
        print(operator.log()[-4000:])
    report(
        "sigkill",
        {
            "seed": seed,
            "sigkills": len(in_flight_at_kill),
            "in_flight_at_each_kill": in_flight_at_kill,
            "evaluations_affected": max(in_flight_at_kill),
            **figures,
        },
    )


def test_watch_connections_cut_lose_nothing(
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
    """Every connection between the operator and the apiserver (its watches too) is cut every 1-2 s."""
    cutter = ConnectionCutter(apiserver_address(kube))
    through_proxy = cutter.kubeconfig(kube, tmp_path / "through-proxy.kubeconfig")
    plans = mixed_plans(9, seed=3)
    ledger = JobLedger(api_client, namespace)
    # One pod per pass: the work is spread over the cuts.
    driver = PlanDriver(core_v1, custom_objects, namespace, {p.name: p for p in plans}, per_step=1)
    operator = start_operator("proxied", through_proxy, namespace, tmp_path)
    try:
        wait_started(operator)
        create_all(evaluations, make_pool(), plans)
        deadline = time.monotonic() + 240
        next_cut = time.monotonic() + 1
        while time.monotonic() < deadline:
            driver.step()
            if time.monotonic() >= next_cut:
                cutter.cut()
                next_cut = time.monotonic() + random.uniform(1.0, 2.0)
            if cutter.cuts >= 5 and all(ph in TERMINAL for ph in phases(evaluations, plans).values()):
                break
            time.sleep(0.3)
        ledger.stop()
        figures = check_nothing_lost(evaluations, plans, ledger, batch_v1, namespace)
        assert cutter.cuts >= 5, "too few cuts to prove anything"
        assert operator.alive()
    finally:
        ledger.stop()
        operator.stop()
        cutter.close()
        print(operator.log()[-4000:])
    report(
        "watch-cut",
        {
            "cuts": cutter.cuts,
            "connections_cut": cutter.connections_cut,
            "reconnects": cutter.accepted,
            **figures,
        },
    )


def test_conflict_storm_loses_nothing(
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
    """Another writer patches labels, annotations and status conditions of the same Evaluations."""
    plans = mixed_plans(9, seed=5)
    ledger = JobLedger(api_client, namespace)
    driver = PlanDriver(core_v1, custom_objects, namespace, {p.name: p for p in plans})
    operator = start_operator("stormy", kube, namespace, tmp_path)
    try:
        wait_started(operator)
        create_all(evaluations, make_pool(), plans)
        storm = ConflictStorm(custom_objects, namespace, [p.name for p in plans])
        try:
            seen = drive_to_the_end(driver, evaluations, plans, timeout=240)
        finally:
            storm.stop()
        assert all(ph in TERMINAL for ph in seen.values()), f"not finished: {seen}"
        ledger.stop()
        figures = check_nothing_lost(evaluations, plans, ledger, batch_v1, namespace)
        # The storm's read-modify-writes never undid the operator's: each terminal condition is there. A
        # foreign condition may stay (Kubernetes convention: other controllers may own conditions too).
        for plan in plans:
            conditions = {c["type"]: c for c in evaluations.status(plan.name).get("conditions", [])}
            assert conditions.get(plan.phase, {}).get("status") == "True", (plan.name, conditions)
        assert operator.alive()
    finally:
        ledger.stop()
        operator.stop()
        print(operator.log()[-4000:])
    assert storm.writes >= 20, f"the storm wrote only {storm.writes} times"
    report("conflict-storm", {"foreign_writes": storm.writes, "conflicts": storm.conflicts, **figures})


def test_evicted_task_is_retried_and_the_evaluation_succeeds(
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
    """Eviction API on one task twice, no retries allowed: evictions are not failures, it still succeeds."""
    plans = [Plan("evicted", 3, "succeed"), Plan("bystander", 2, "succeed")]
    ledger = JobLedger(api_client, namespace)
    operator = start_operator("evict", kube, namespace, tmp_path)
    selector = "assay.dev/evaluation=evicted,assay.dev/step=predict"
    evictions = 2
    try:
        wait_started(operator)
        pool = make_pool()
        evaluations.create("evicted", pool, tasks=3, backoffLimitPerTask=0, resources=NO_GPU)
        create_all(evaluations, pool, plans[1:])
        index = "1"
        evicted: set[str] = set()
        for _ in range(evictions):
            victim = wait_until(
                lambda: [
                    p
                    for p in core_v1.list_namespaced_pod(namespace, label_selector=selector).items
                    if p.status.phase == "Running"
                    and p.metadata.labels["batch.kubernetes.io/job-completion-index"] == index
                    and p.metadata.uid not in evicted
                ],
                timeout=60,
                what=f"a running pod of task predict/{index}",
            )[0]
            core_v1.create_namespaced_pod_eviction(
                victim.metadata.name,
                namespace,
                client.V1Eviction(
                    metadata=client.V1ObjectMeta(name=victim.metadata.name, namespace=namespace)
                ),
            )
            evicted.add(victim.metadata.uid)
        driver = PlanDriver(core_v1, custom_objects, namespace, {p.name: p for p in plans})
        seen = drive_to_the_end(driver, evaluations, plans, timeout=120)
        assert seen == {"evicted": "Succeeded", "bystander": "Succeeded"}, evaluations.status("evicted")
        ledger.stop()
        task = next(
            t
            for t in evaluations.status("evicted")["tasks"]
            if t["step"] == "predict" and t["index"] == int(index)
        )
        assert task["phase"] == "Succeeded", task
        # 3 predict pods, one more per eviction, and the evaluate pod.
        assert len(ledger.pod_uids["evicted"]) == 3 + evictions + 1
        losses = count_losses(custom_objects, batch_v1, namespace, plans, ledger)
        assert losses.figures() == {"lost": 0, "duplicated": 0}, losses
        assert operator.alive()
    finally:
        ledger.stop()
        operator.stop()
        print(operator.log()[-4000:])
    report(
        "eviction",
        {"evictions": evictions, "retries_allowed": 0, "evaluations_affected": 1, **losses.figures()},
    )


def test_the_loss_count_sees_a_lost_evaluation_and_a_job_created_twice(
    assay_crds: None,
    namespace: str,
    make_pool: Callable[..., str],  # noqa: F811
    evaluations: Evaluations,  # noqa: F811
    api_client: client.ApiClient,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
) -> None:
    """No operator runs: the Evaluation never gets a phase, and the Jobs are deleted and created again by
    hand, one while the ledger watches and one after it stopped. Each must count."""
    plans = [Plan("stuck", 1, "succeed")]
    evaluations.create("stuck", make_pool(), resources=NO_GPU)
    ledger = JobLedger(api_client, namespace)
    try:
        for name in ("watched", "after-the-watch"):
            create_suspended_job(batch_v1, namespace, name)
        wait_until(
            lambda: {"watched", "after-the-watch"} <= ledger.job_uids.keys(), timeout=30, what="ledger"
        )
        recreate_job(batch_v1, namespace, "watched")
        wait_until(lambda: len(ledger.job_uids["watched"]) == 2, timeout=30, what="the second watched Job")
    finally:
        ledger.stop()
    recreate_job(batch_v1, namespace, "after-the-watch")
    losses = count_losses(custom_objects, batch_v1, namespace, plans, ledger)
    assert losses.lost == {"stuck": "None"}
    assert set(losses.duplicated) == {"watched", "after-the-watch"}
    assert losses.figures() == {"lost": 1, "duplicated": 2}


def create_suspended_job(batch_v1: client.BatchV1Api, namespace: str, name: str) -> None:
    batch_v1.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "none:0"}]}
                },
            },
        },
    )


def recreate_job(batch_v1: client.BatchV1Api, namespace: str, name: str) -> None:
    batch_v1.delete_namespaced_job(name, namespace, propagation_policy="Background")

    def gone() -> bool:
        try:
            batch_v1.read_namespaced_job(name, namespace)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_until(gone, timeout=30, what=f"Job {name} to be deleted")
    create_suspended_job(batch_v1, namespace, name)
