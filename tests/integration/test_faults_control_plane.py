"""Faults of the cluster itself, with many Evaluations in flight: kube-apiserver and etcd restarted, or away
for minutes as in an upgrade; a fake node deleted while tasks run on it. Nothing may be lost (the same checks
as test_faults.py), and the operator must ride out the outage saying so once, not once per retry.

They restart the control plane, so they run only on a cluster of their own: ``make test-chaos`` starts the
chaos cluster (hack/kwok-cluster.sh up chaos), sets ``ASSAY_KUBECONFIG`` and ``ASSAY_CHAOS_CLUSTER`` (its
kwokctl name), runs them (``-m chaos``) and stops it; the main suite leaves them out (``-m "not chaos"``),
and elsewhere they skip. Each prints a ``FAULTS {...}`` line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3
from faults import (
    ControlPlaneSupervisor,
    JobLedger,
    Plan,
    PlanDriver,
    count_losses,
    mixed_plans,
    restart_component,
)
from kubernetes import client
from operators import OperatorProcess
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
from test_ha import peering_crd, peering_name  # noqa: F401 (fixtures)
from test_operator import Evaluations, evaluations, make_pool  # noqa: F401 (fixtures)

from support import wait_until

CHAOS_CLUSTER = os.environ.get("ASSAY_CHAOS_CLUSTER", "")
KWOKCTL = (
    Path(os.environ.get("ASSAY_CACHE", Path.home() / ".cache" / "assay")) / "kwok" / "v0.8.0" / "kwokctl"
)

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(
        not CHAOS_CLUSTER,
        reason="restarts kube-apiserver and etcd: runs on a cluster of its own with `make test-chaos`",
    ),
]


def _kwokctl() -> str:
    found = sorted((KWOKCTL.parent.parent).glob("*/kwokctl"))
    return str(found[-1] if found else KWOKCTL)


@pytest.fixture
def supervisor(api_client: client.ApiClient) -> ControlPlaneSupervisor:
    return ControlPlaneSupervisor(_kwokctl(), CHAOS_CLUSTER, client.CoordinationV1Api(api_client))


def wait_leading(supervisor: ControlPlaneSupervisor, after: str) -> None:
    wait_until(
        supervisor.leading,
        timeout=180,
        what=f"kube-controller-manager and kube-scheduler to lead again {after}",
        last_seen=lambda: {"exited": supervisor.exited(), "revived": dict(supervisor.revived)},
    )


@pytest.fixture(autouse=True)
def control_plane_leading(supervisor: ControlPlaneSupervisor) -> Iterator[None]:
    """Each test starts, and leaves the next one, a control plane whose controllers run and lead.

    Autouse, so it is set up before the ``namespace`` fixture (whose service account the controller
    manager creates).
    """
    wait_leading(supervisor, "before the test")
    yield
    wait_leading(supervisor, "after the test")


def ready(operator: OperatorProcess) -> bool | None:
    """The operator's readiness (/readyz, the Deployment's readinessProbe): None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/readyz", timeout=5) as reply:
            return bool(reply.status == 200)
    except urllib.error.HTTPError:
        return False  # 503 (API unreachable), or 404 where there is no readiness endpoint
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def apiserver_ready(api_client: client.ApiClient) -> bool:
    """The apiserver's own /readyz (it fails while etcd is away, and until its etcd client reconnects)."""
    request = api_client.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
    try:
        return api_client.call_api(*request, _request_timeout=5).status == 200
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError):
        return False


def outage_lines(log: str) -> dict[str, int]:
    """What the operator logged about the API going away: outage and recovery lines, errors, tracebacks."""
    lines = log.splitlines()
    return {
        "unreachable": sum(
            1 for line in lines if " WARNING assay.operator.api: Kubernetes API unreachable" in line
        ),
        "reachable_again": sum(
            1 for line in lines if " INFO assay.operator.api: Kubernetes API reachable again" in line
        ),
        "error_lines": sum(1 for line in lines if " ERROR " in line),
        "warning_lines": sum(1 for line in lines if " WARNING " in line),
        "tracebacks": sum(1 for line in lines if line.startswith("Traceback")),
    }


@dataclass
class OutageWatch:
    """The operator sampled while a component is away: did it stay alive, and did readiness say so."""

    died: bool = False
    not_ready_seen: bool = False

    def sample(self, operator: OperatorProcess) -> None:
        self.died = self.died or not operator.alive()
        self.not_ready_seen = self.not_ready_seen or ready(operator) is False


def _outage_test(
    component: str,
    outages: int,
    seconds_away: float,
    peering: str,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    pool: str,
    records: Evaluations,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    supervisor: ControlPlaneSupervisor,
) -> None:
    """``outages`` times: drive the plans a little, stop ``component`` for ``seconds_away``, start it again.

    The operator runs as in its Deployment (with peering). While the component is away it must stay alive
    (and, in a long outage, say not ready on /readyz); after each outage it must be ready again. At the end
    nothing may be lost or duplicated (counted on the cluster), and the log has one WARNING per outage and
    one INFO per recovery, not a line per retry.
    """
    plans = mixed_plans(12, seed=11)
    ledger = JobLedger(api_client, namespace)
    driver = PlanDriver(core_v1, custom_objects, namespace, {p.name: p for p in plans}, per_step=2)
    operator = OperatorProcess.start(
        f"{component}-{outages}x{seconds_away:g}s",
        kubeconfig=kube,
        namespaces=[namespace],
        log_dir=tmp_path,
        peering=peering,
    )
    downtimes: list[float] = []
    apiserver_back: list[float] = []  # seconds from the component's start to the apiserver's readiness
    operator_back: list[float] = []  # ... and to the operator's
    in_flight: list[int] = []
    watches: list[OutageWatch] = []
    log_before = ""
    try:
        wait_started(operator)
        create_all(records, pool, plans)
        for _ in range(outages):
            until = time.monotonic() + 4
            while time.monotonic() < until:
                driver.step()
                time.sleep(0.4)
            # In flight: every Evaluation not yet finished runs, its fake pods held Running by the plan.
            wait_until(
                lambda: all(ph in {"Running", *TERMINAL} for ph in phases(records, plans).values()),
                timeout=60,
                what="every Evaluation to run before the outage",
                last_seen=lambda: phases(records, plans),
            )
            in_flight.append(sum(1 for ph in phases(records, plans).values() if ph not in TERMINAL))
            wait_until(lambda: ready(operator), timeout=30, what="the operator to be ready before the outage")
            if not log_before:
                log_before = operator.log()
            watch = OutageWatch()
            with ThreadPoolExecutor(1) as background:
                away = background.submit(
                    restart_component, _kwokctl(), CHAOS_CLUSTER, component, seconds_away
                )
                while not away.done():
                    watch.sample(operator)
                    time.sleep(1)
                downtimes.append(round(away.result(), 1))
            watches.append(watch)
            # After etcd is back the apiserver may take a while to be ready again (its etcd client reconnects
            # with a backoff); the operator must be ready within three of its probe periods once it is.
            back = time.monotonic()
            wait_until(
                lambda: apiserver_ready(api_client),
                timeout=300,
                what=f"the apiserver to be ready after {component}",
            )
            apiserver_back.append(round(time.monotonic() - back, 1))
            wait_until(
                lambda: ready(operator), timeout=15, what=f"the operator to be ready after {component}"
            )
            operator_back.append(round(time.monotonic() - back, 1))
            # The controller manager and the scheduler exit when they lose their Lease; they are started
            # again, as a kubelet would, before the plans go on (the report counts the restarts).
            wait_leading(supervisor, f"after {component}")
        driver.per_step = None
        seen = drive_to_the_end(driver, records, plans, timeout=300)
        assert all(ph in TERMINAL for ph in seen.values()), f"not finished: {seen}"
        ledger.stop()
        # Lost and duplicated are counted on the cluster (faults.count_losses) and asserted 0 in there.
        figures = check_nothing_lost(records, plans, ledger, batch_v1, namespace)
        assert (figures["lost"], figures["duplicated"]) == (0, 0), figures
        assert operator.alive() and not any(w.died for w in watches), "the operator exited during the outage"
        logged = outage_lines(operator.log()[len(log_before) :])
        if seconds_away >= 30:
            # A long outage: readiness said so, and the log says it once each way.
            assert all(w.not_ready_seen for w in watches), (
                "/readyz never said not ready while the API was away"
            )
            assert logged["unreachable"] == outages, logged
        # A restart of seconds may pass between two probes (no line), but never more than one each way.
        assert logged["unreachable"] <= outages, logged
        assert logged["reachable_again"] == logged["unreachable"], logged
        # Bound: no traceback, and at most 2 ERROR lines however long the outage (kopf's retries are DEBUG).
        assert logged["tracebacks"] == 0, logged
        assert logged["error_lines"] <= 2, logged
    finally:
        ledger.stop()
        operator.stop()
        print(operator.log()[-6000:])
    report(
        f"{component}-{'outage' if seconds_away >= 30 else 'restart'}",
        {
            "outages": outages,
            "seconds_down": downtimes,
            "in_flight_at_each_outage": in_flight,
            "evaluations_affected": max(in_flight),
            "not_ready_during_outage": [w.not_ready_seen for w in watches],
            "apiserver_ready_after_s": apiserver_back,
            "operator_ready_after_s": operator_back,
            "controllers_restarted": dict(supervisor.revived),
            **figures,
            **logged,
        },
    )


# (component, outages, seconds away): short restarts, twice; then the control plane away for minutes, as
# during an upgrade.
OUTAGES = [
    ("kube-apiserver", 2, 2.0),
    ("etcd", 2, 2.0),
    ("kube-apiserver", 1, 180.0),
    ("etcd", 1, 120.0),
]


@pytest.mark.parametrize(
    ("component", "outages", "seconds_away"), OUTAGES, ids=[f"{c}-{n}x{s:g}s" for c, n, s in OUTAGES]
)
def test_control_plane_away_mid_run_loses_nothing(
    component: str,
    outages: int,
    seconds_away: float,
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    peering_name: str,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    evaluations: Evaluations,  # noqa: F811
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    kwok_nodes: list[str],
    supervisor: ControlPlaneSupervisor,
) -> None:
    pool = make_pool()
    clients = (api_client, core_v1, batch_v1, custom_objects)
    _outage_test(
        component,
        outages,
        seconds_away,
        peering_name,
        kube,
        tmp_path,
        namespace,
        pool,
        evaluations,
        *clients,
        supervisor,
    )


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
        losses = count_losses(custom_objects, batch_v1, namespace, plans, ledger)
        assert losses.figures() == {"lost": 0, "duplicated": 0}, losses
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
            **losses.figures(),
        },
    )
