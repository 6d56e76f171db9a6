"""Fault injection for the reliability tests (tests/integration/test_faults*.py).

* :class:`Plan` — how one Evaluation of a fault test must end (succeed with a summary, fail a task, cancel);
  :class:`PlanDriver` ends its fake pods accordingly, one pass per call, so a test can interleave faults;
* :class:`JobLedger` — watches a namespace and records every Job and pod ever created, to prove that no
  Job was created twice and no task ran more pods than planned;
* :func:`count_losses` — the Evaluations lost (not in their planned phase) and the Jobs duplicated, as
  figures for a test to assert on and report;
* :class:`ConnectionCutter` — a TCP proxy on 127.0.0.1 between the operator and the apiserver that cuts
  every open connection (watches included) on demand;
* :class:`ConflictStorm` — another writer patching the same Evaluations' labels, annotations and status;
* :func:`restart_component` — kills a kwokctl cluster's kube-apiserver or etcd and starts it again;
* :class:`ControlPlaneSupervisor` — what a kubelet does for static pods: starts again a control-plane
  component that exited, and says when the controllers lead again.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from assay.api import EVALUATION_PLURAL, GROUP, VERSION
from assay.contract import failure_message, result_message
from support import OUTCOME_ANNOTATION

INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class Plan:
    """One Evaluation of a fault test and the end it must reach."""

    name: str
    tasks: int
    # "succeed": every task succeeds and the summary is reported; "fail": predict/0 (or the single task)
    # fails on every attempt with exit code 3; "cancel": cancelled once running.
    outcome: str

    @property
    def summary(self) -> dict[str, Any]:
        return {"plan": self.name, "tasks": self.tasks}

    @property
    def phase(self) -> str:
        return {"succeed": "Succeeded", "fail": "Failed", "cancel": "Cancelled"}[self.outcome]

    def pods_at_most(self, backoff_limit: int) -> int:
        """Most pods this plan may ever get: one per task, plus the retries of a failing task."""
        steps = self.tasks + (1 if self.tasks > 1 else 0)
        return steps + (backoff_limit if self.outcome == "fail" else 0)


def mixed_plans(count: int, seed: int) -> list[Plan]:
    """``count`` plans: mostly successes of 1 to 3 tasks, a few failures and cancels."""
    rng = random.Random(seed)
    outcomes = ["succeed"] * 6 + ["fail"] * 2 + ["cancel"]
    return [Plan(f"e{i:02d}", rng.choice((1, 2, 3)), outcomes[i % len(outcomes)]) for i in range(count)]


@dataclass
class PlanDriver:
    """Ends each Running fake pod of the planned Evaluations the way its plan says (one pass per call)."""

    core: client.CoreV1Api
    custom: client.CustomObjectsApi
    namespace: str
    plans: dict[str, Plan]
    # Pods ended per pass at most (None: all): spreads the work over a fault test's faults.
    per_step: int | None = None
    finished: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)

    def step(self) -> None:
        try:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{GROUP}/evaluation").items
        except (ApiException, OSError):
            return  # the apiserver may be down right now; the next pass tries again
        budget = self.per_step
        for pod in pods:
            if budget is not None and budget <= 0:
                return
            if self._drive(pod) and budget is not None:
                budget -= 1

    def _drive(self, pod: client.V1Pod) -> bool:
        """End ``pod`` as planned; True when this pass changed something."""
        labels = pod.metadata.labels or {}
        plan = self.plans.get(labels.get(f"{GROUP}/evaluation", ""))
        name = pod.metadata.name
        if plan is None or pod.status.phase != "Running" or name in self.finished:
            return False
        if OUTCOME_ANNOTATION in (pod.metadata.annotations or {}):
            self.finished.add(name)
            return False
        if plan.outcome == "cancel":
            return self._cancel(plan)
        step = labels.get(f"{GROUP}/step")
        final = step in ("evaluate", "all")
        annotations: dict[str, str]
        if (
            plan.outcome == "fail"
            and (step == "all" or labels.get(INDEX_LABEL) == "0")
            and step != "evaluate"
        ):
            message = failure_message("HandlerFailed", f"{plan.name}: planned failure")
            annotations = {OUTCOME_ANNOTATION: "fail", "kwok.assay.dev/exit-code": "3"}
            annotations["kwok.assay.dev/message"] = message
        else:
            annotations = {OUTCOME_ANNOTATION: "succeed"}
            if final:
                annotations["kwok.assay.dev/message"] = result_message(plan.summary)
        try:
            self.core.patch_namespaced_pod(name, self.namespace, {"metadata": {"annotations": annotations}})
        except (ApiException, OSError):
            return False
        self.finished.add(name)
        return True

    def _cancel(self, plan: Plan) -> bool:
        if plan.name in self.cancelled:
            return False
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, EVALUATION_PLURAL, plan.name, {"spec": {"cancel": True}}
            )
        except (ApiException, OSError):
            return False
        self.cancelled.add(plan.name)
        return True


class JobLedger:
    """Every Job and pod created in a namespace, from a watch that outlives apiserver restarts."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.job_uids: dict[str, set[str]] = defaultdict(set)
        # job name -> the creation timestamps seen: a Job deleted and created again under its name
        self.job_created: dict[str, set[str]] = defaultdict(set)
        self.pod_uids: dict[str, set[str]] = defaultdict(set)  # evaluation -> pod uids
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._follow, args=(client.BatchV1Api(api).list_namespaced_job, namespace, True)
            ),
            threading.Thread(
                target=self._follow, args=(client.CoreV1Api(api).list_namespaced_pod, namespace, False)
            ),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def _follow(self, lister: Any, namespace: str, jobs: bool) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(lister, namespace, timeout_seconds=5):
                    obj = event["object"]
                    if jobs:
                        self.record_job(obj)
                    else:
                        evaluation = (obj.metadata.labels or {}).get(f"{GROUP}/evaluation")
                        if evaluation:
                            self.pod_uids[evaluation].add(obj.metadata.uid)
                    if self._stop.is_set():
                        break
            except Exception:  # the apiserver went away: watch again (a re-list sees every object again)
                time.sleep(0.5)
            finally:
                stream.stop()

    def record_job(self, job: client.V1Job) -> None:
        self.job_uids[job.metadata.name].add(job.metadata.uid)
        self.job_created[job.metadata.name].add(str(job.metadata.creation_timestamp))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def duplicated_jobs(self) -> dict[str, set[str]]:
        """Job names created more than once: more than one uid, or more than one creation timestamp."""
        return {
            name: uids | self.job_created[name]
            for name, uids in self.job_uids.items()
            if len(uids) > 1 or len(self.job_created[name]) > 1
        }


@dataclass(frozen=True)
class Losses:
    """What a fault test lost or duplicated, read from the cluster."""

    # Evaluation -> the phase it has instead of the planned one ("missing" when it is gone).
    lost: dict[str, str]
    # Job name -> the uids and creation timestamps it had.
    duplicated: dict[str, set[str]]

    def figures(self) -> dict[str, int]:
        return {"lost": len(self.lost), "duplicated": len(self.duplicated)}


def count_losses(
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    namespace: str,
    plans: Iterable[Plan],
    ledger: JobLedger,
) -> Losses:
    """Evaluations that did not reach their planned phase, and Jobs created twice (the ledger's record plus
    the Jobs there now, which catches a Job deleted and created again while the ledger's watch was down)."""
    items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL)["items"]
    phases = {item["metadata"]["name"]: (item.get("status") or {}).get("phase") for item in items}
    lost = {
        plan.name: str(phases.get(plan.name, "missing"))
        for plan in plans
        if phases.get(plan.name, "missing") != plan.phase
    }
    for job in batch.list_namespaced_job(namespace).items:
        ledger.record_job(job)
    return Losses(lost=lost, duplicated=ledger.duplicated_jobs())


class ConnectionCutter:
    """A TCP proxy on 127.0.0.1 to ``upstream``; :meth:`cut` closes every connection open through it."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.cuts = 0
        self.connections_cut = 0
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self.accepted += 1
                self._open.update((downstream, upstream))
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> int:
        """Close every open connection (both sides); return how many client connections were cut."""
        with self._lock:
            victims = list(self._open)
        for sock in victims:
            self._close(sock)
        self.cuts += 1
        self.connections_cut += len(victims) // 2
        return len(victims) // 2

    def close(self) -> None:
        self._server.close()
        self.cut()

    def kubeconfig(self, original: Path, target: Path) -> Path:
        """A copy of ``original`` whose clusters are reached through this proxy."""
        config = yaml.safe_load(original.read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        target.write_text(yaml.safe_dump(config))
        return target


def apiserver_address(kubeconfig: Path) -> tuple[str, int]:
    """(host, port) of the first cluster's server in a kubeconfig."""
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    host_port = server.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    return host, int(port)


class ConflictStorm:
    """Another writer: patches labels, annotations and status of the same Evaluations, as fast as it can.

    Each write is a read-modify-write with the read resourceVersion, so it conflicts with the operator's
    writes (and they with it). The status write adds a foreign condition that the operator must not keep.
    """

    FOREIGN_CONDITION = "ExternalAudit"

    def __init__(self, api: client.CustomObjectsApi, namespace: str, names: Iterable[str]) -> None:
        self.api, self.namespace, self.names = api, namespace, list(names)
        self.writes = 0
        self.conflicts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random(7)
        while not self._stop.is_set():
            name = rng.choice(self.names)
            try:
                self._write(name, rng.randrange(3))
                self.writes += 1
            except ApiException as exc:
                if exc.status == 409:
                    self.conflicts += 1
            except OSError:
                pass
            time.sleep(0.02)

    def _write(self, name: str, kind: int) -> None:
        current = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, EVALUATION_PLURAL, name
        )
        version = current["metadata"]["resourceVersion"]
        stamp = str(time.monotonic_ns())
        if kind == 0:
            body: dict[str, Any] = {"metadata": {"resourceVersion": version, "labels": {"storm": stamp[-8:]}}}
            self.api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, EVALUATION_PLURAL, name, body
            )
        elif kind == 1:
            body = {"metadata": {"resourceVersion": version, "annotations": {"example.com/storm": stamp}}}
            self.api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, EVALUATION_PLURAL, name, body
            )
        else:
            conditions = list((current.get("status") or {}).get("conditions") or [])
            conditions = [c for c in conditions if c.get("type") != self.FOREIGN_CONDITION]
            conditions.append(
                {
                    "type": self.FOREIGN_CONDITION,
                    "status": "True",
                    "reason": "Storm",
                    "message": stamp,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            )
            body = {"metadata": {"resourceVersion": version}, "status": {"conditions": conditions}}
            self.api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, EVALUATION_PLURAL, name, body
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def _pid(workdir: Path, component: str) -> int:
    return int((workdir / "pids" / f"{component}.pid").read_text().strip())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _workdir(cluster: str) -> Path:
    return Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok")) / "clusters" / cluster


def restart_component(kwokctl: str, cluster: str, component: str, down_seconds: float = 2.0) -> float:
    """SIGKILL a kwokctl (binary runtime) cluster's ``component``, wait, and start it again.

    kwokctl has no per-component restart; ``kwokctl start cluster`` starts each component whose pid file
    names no live process and leaves the running ones alone, which restarts exactly the killed one with its
    own command line. Returns the seconds the component was down.
    """
    workdir = _workdir(cluster)
    pid = _pid(workdir, component)
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(down_seconds)
    _start_cluster(kwokctl, cluster)
    new_pid = _pid(workdir, component)
    if new_pid == pid or not _alive(new_pid):
        raise RuntimeError(f"{component} of {cluster} did not come back (pid file says {new_pid})")
    return time.monotonic() - started


def _start_cluster(kwokctl: str, cluster: str) -> None:
    """``kwokctl start cluster``: starts each component whose pid file names no live process."""
    try:
        result = subprocess.run(
            [kwokctl, "--name", cluster, "start", "cluster", "--wait", "60s"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"kwokctl start cluster {cluster} took over 120 s\n{_component_logs(cluster)}"
        ) from exc
    if result.returncode != 0:
        raise RuntimeError(
            f"kwokctl start cluster {cluster} failed: {result.stderr[-2000:]}\n{_component_logs(cluster)}"
        )


def _component_logs(cluster: str, lines: int = 15) -> str:
    """The last lines of each control-plane component's log: why a start failed is there, not in kwokctl's."""
    logs = _workdir(cluster) / "logs"
    tails = []
    for component in CONTROL_PLANE:
        path = logs / f"{component}.log"
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path}\n" + "\n".join(tail))
    return "\n".join(tails) or f"(no component logs in {logs})"


# The controllers that hold a leader Lease in kube-system (the Lease is named after the component).
LEADERS = ("kube-controller-manager", "kube-scheduler")
CONTROL_PLANE = ("etcd", "kube-apiserver", *LEADERS, "kwok-controller")


@dataclass
class ControlPlaneSupervisor:
    """Keeps a kwokctl (binary runtime) cluster's control plane running, as the kubelet keeps static pods.

    kube-controller-manager and kube-scheduler exit by design when they cannot renew their leader Lease
    (etcd or the apiserver away for longer than the renew deadline, 10 s), and may exit again when they
    start before the apiserver is healthy. On a real control plane the kubelet starts them again; kwokctl's
    binary runtime does not, and without them no Job gets a pod and no namespace a service account.
    ``revived`` counts the restarts, for the test's report.
    """

    kwokctl: str
    cluster: str
    coordination: client.CoordinationV1Api
    revived: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def exited(self) -> list[str]:
        workdir = _workdir(self.cluster)
        return [c for c in CONTROL_PLANE if not _alive(_pid(workdir, c))]

    def leading(self, fresh_seconds: float = 10.0) -> bool:
        """True once every component runs and each controller has renewed its Lease in the last seconds.

        Starts again any component that exited, so calling this until it holds is the recovery.
        """
        gone = self.exited()
        if gone:
            for component in gone:
                self.revived[component] += 1
            _start_cluster(self.kwokctl, self.cluster)
            return False
        now = time.time()
        for name in LEADERS:
            try:
                lease = self.coordination.read_namespaced_lease(name, "kube-system")
            except (ApiException, urllib3.exceptions.HTTPError, OSError):
                return False
            renewed = lease.spec.renew_time
            if renewed is None or now - renewed.timestamp() > fresh_seconds:
                return False
        return True
