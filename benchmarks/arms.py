"""The three arms: what each installs, starts, creates per evaluation, and how it tells an evaluation ended.

- A0 ``RawJobs``: no controller; the benchmark creates the Jobs itself (the floor).
- A1 ``JobSetArm``: the JobSet manager (``hack/build-jobset.sh``) run as a process on this machine, its
  admission webhooks served on 127.0.0.1 with a self-signed certificate registered by URL (see README).
- A2 ``AssayArm``: ``assay-operator`` run as a process against the benchmark cluster.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from assay.contract import Step

from . import workloads
from .kube import Kube
from .recorder import condition_true

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Context:
    kube: Kube
    kubeconfig: Path
    kubectl: Path
    work_dir: Path  # scratch for this arm (certificates, configs, logs)

    def kubectl_run(self, *args: str) -> None:
        argv = [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")

    def install_crds(self, directory: Path, *names: str) -> None:
        """Apply the CRDs of ``directory`` and wait until the apiserver serves them."""
        files = [f for f in sorted(directory.glob("*.yaml")) if f.name != "kustomization.yaml"]
        self.kubectl_run("apply", "--server-side", *(a for f in files for a in ("-f", str(f))))
        # A CRD has no conditions at first: `kubectl wait` fails until it has.
        for name in names:
            for _ in range(120):
                try:
                    self.kubectl_run("wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}")
                    break
                except RuntimeError:
                    time.sleep(0.25)
            else:
                raise RuntimeError(f"CRD {name} not Established")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ControllerProcess:
    """A controller under test, run as a child process with its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.log_path = argv, log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{self.argv[0]} exited with {self.proc.returncode}; log {self.log_path}:\n{tail}"
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Arm:
    """Base: how an arm names its objects; subclasses fill in the rest."""

    key = "A?"
    title = ""
    job_label = workloads.EVAL_LABEL
    pod_label = workloads.EVAL_LABEL
    # Whether the arm can hold live (suspended) evaluations for the memory figure.
    live_supported = False
    # Whether the run times the arm's command line (Assay's `assay list -A` and `assay get`).
    cli_timed = False
    controller: ControllerProcess | None = None

    async def setup(self, ctx: Context) -> None:
        """Install and start what the arm needs, and return once it is ready to serve."""

    def top_path(self, namespace: str) -> str | None:
        """Where the arm's top objects (one per evaluation) live; None when the Jobs are the top (A0)."""
        return None

    async def submit(self, kube: Kube, name: str, tasks: int, namespace: str) -> None:
        raise NotImplementedError

    def outcome_of(self, obj: dict[str, Any]) -> str | None:
        raise NotImplementedError

    async def on_job(self, kube: Kube, name: str, job: dict[str, Any], tasks: int) -> None:
        """React to a Job event (only A0 does: it is its own controller)."""

    async def submit_live(self, kube: Kube, name: str, tasks: int, namespace: str) -> None:
        raise NotImplementedError

    def live_settled(self, obj: dict[str, Any]) -> bool:
        """True once the controller has processed a live (suspended) evaluation."""
        raise NotImplementedError

    async def counters(self) -> dict[str, float]:
        """The controller's own counters worth reporting (e.g. reconciles), read now; none by default."""
        return {}

    def teardown(self) -> None:
        if self.controller is not None:
            self.controller.stop()


def reconcile_counts(metrics_text: str) -> dict[str, float]:
    """Reconciles so far by handler, from the operator's Prometheus text (its reconcile histogram)."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "assay_reconcile_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count"):
                counts[f"reconciles_{sample.labels.get('handler', '')}"] = sample.value
    return counts


class RawJobs(Arm):
    key, title = "A0", "raw Jobs as Assay renders them (floor)"

    def __init__(self) -> None:
        self._evaluate_created: set[tuple[str, str]] = set()

    async def submit(self, kube: Kube, name: str, tasks: int, namespace: str) -> None:
        await kube.create(
            f"/apis/batch/v1/namespaces/{namespace}/jobs",
            workloads.rendered_job(name, Step.PREDICT, tasks, namespace),
        )

    async def on_job(self, kube: Kube, name: str, job: dict[str, Any], tasks: int) -> None:
        namespace = job["metadata"]["namespace"]
        step = job["metadata"]["labels"].get(workloads.STEP_LABEL)
        if step != Step.PREDICT.value or not condition_true(job, "Complete"):
            return
        if (namespace, name) in self._evaluate_created:
            return
        self._evaluate_created.add((namespace, name))
        await kube.create(
            f"/apis/batch/v1/namespaces/{namespace}/jobs",
            workloads.rendered_job(name, Step.EVALUATE, tasks, namespace),
        )

    def outcome_of(self, obj: dict[str, Any]) -> str | None:
        if condition_true(obj, "Failed"):
            return "Failed"
        step = obj["metadata"].get("labels", {}).get(workloads.STEP_LABEL)
        return "Succeeded" if step == Step.EVALUATE.value and condition_true(obj, "Complete") else None


def _self_signed_cert(directory: Path) -> bytes:
    """tls.crt/tls.key for 127.0.0.1 in ``directory`` (controller-runtime's names); returns the PEM cert."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(directory / "tls.key"),
         "-out", str(directory / "tls.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    return (directory / "tls.crt").read_bytes()


class JobSetArm(Arm):
    key, title = "A1", "JobSet controller (Go peer)"
    job_label = "jobset.sigs.k8s.io/jobset-name"
    live_supported = True

    def __init__(self, install_dir: Path) -> None:
        self.install_dir = install_dir  # $ASSAY_CACHE/jobset/<version>: jobset-controller, crds/

    async def setup(self, ctx: Context) -> None:
        binary = self.install_dir / "jobset-controller"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run hack/build-jobset.sh")
        ctx.install_crds(self.install_dir / "crds", "jobsets.jobset.x-k8s.io")
        # Out of cluster there is no Service for the webhooks and no cert rotation: serve them on 127.0.0.1
        # with a self-signed certificate, registered by URL. JobSet relies on its defaulting webhook.
        cert_dir = ctx.work_dir / "jobset-certs"
        ca_bundle = _self_signed_cert(cert_dir)
        webhook_port, probe_port = free_port(), free_port()
        config = {
            "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
            "kind": "Configuration",
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
            "health": {"healthProbeBindAddress": f"127.0.0.1:{probe_port}"},
            "clientConnection": {"qps": 500, "burst": 500},
        }
        config_path = ctx.work_dir / "jobset-config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        for doc in _webhook_configurations(self.install_dir, webhook_port, ca_bundle):
            await ctx.kube.create(f"/apis/admissionregistration.k8s.io/v1/{doc['kind'].lower()}s", doc)
        self.controller = ControllerProcess(
            [str(binary), f"--config={config_path}", "--metrics-bind-address=0", "--zap-log-level=error"],
            {"KUBECONFIG": str(ctx.kubeconfig)},
            ctx.work_dir / "jobset-controller.log",
        )
        await _wait_http_ok(f"http://127.0.0.1:{probe_port}/readyz", self.controller, timeout_s=60)

    def top_path(self, namespace: str) -> str:
        return f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{namespace}/jobsets"

    async def submit(self, kube: Kube, name: str, tasks: int, namespace: str) -> None:
        await kube.create(self.top_path(namespace), workloads.jobset(name, tasks, namespace=namespace))

    def outcome_of(self, obj: dict[str, Any]) -> str | None:
        if condition_true(obj, "Completed"):
            return "Succeeded"
        return "Failed" if condition_true(obj, "Failed") else None

    async def submit_live(self, kube: Kube, name: str, tasks: int, namespace: str) -> None:
        doc = workloads.jobset(name, tasks, suspend=True, namespace=namespace)
        await kube.create(self.top_path(namespace), doc)

    def live_settled(self, obj: dict[str, Any]) -> bool:
        return condition_true(obj, "Suspended")


def _webhook_configurations(install_dir: Path, port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """JobSet's own webhook configurations (config/components/webhook of its module, with the pod webhooks
    narrowed to JobSet pods as its kustomize patches do), pointed at https://127.0.0.1:PORT."""
    manifest = install_dir / "webhook-manifests.yaml"
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    for doc in docs:
        doc["metadata"]["name"] = f"bench-jobset-{doc['metadata']['name']}"
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca_bundle).decode(),
            }
            if hook["rules"][0]["resources"] == ["pods"]:
                hook["objectSelector"] = {
                    "matchExpressions": [{"key": "jobset.sigs.k8s.io/jobset-name", "operator": "Exists"}]
                }
    return docs


async def _wait_http_ok(url: str, process: ControllerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            process.check_alive()
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout_s} s; see {process.log_path}")


def _operator_path() -> Path:
    operator = Path(os.environ.get("BENCH_OPERATOR", str(REPO_ROOT / ".venv" / "bin" / "assay-operator")))
    if not operator.exists():
        raise RuntimeError(f"{operator} is missing: run 'make venv' (the operator's console script)")
    return operator


class AssayArm(Arm):
    key, title = "A2", "Assay operator"
    live_supported = True
    cli_timed = True
    TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled", "Expired"})

    async def setup(self, ctx: Context) -> None:
        ctx.install_crds(REPO_ROOT / "crds", "evaluations.assay.dev", "resourcepools.assay.dev")
        operator = _operator_path()
        # As in production: its validating webhook served (on 127.0.0.1, kopf registers it) and metrics on.
        self.metrics_port = free_port()
        args = ["--webhook", "local", "--metrics-port", str(self.metrics_port), "--health-port", "0"]
        args += shlex.split(os.environ.get("BENCH_OPERATOR_ARGS", ""))
        self.controller = ControllerProcess(
            [str(operator), "--kubeconfig", str(ctx.kubeconfig), *args],
            {"KUBECONFIG": str(ctx.kubeconfig), **workloads.OPERATOR_ENV},
            ctx.work_dir / "assay-operator.log",
        )
        await ctx.kube.create("/apis/assay.dev/v1alpha1/resourcepools", workloads.resource_pool())
        # Ready once the operator has written the pool's status (it has started and is watching).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.controller.check_alive()
            pool = await ctx.kube.request("GET", f"/apis/assay.dev/v1alpha1/resourcepools/{workloads.POOL}")
            if pool.get("status"):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(
            f"assay-operator wrote no ResourcePool status in 90 s; see {self.controller.log_path}"
        )

    def top_path(self, namespace: str) -> str:
        return f"/apis/assay.dev/v1alpha1/namespaces/{namespace}/evaluations"

    async def submit(self, kube: Kube, name: str, tasks: int, namespace: str) -> None:
        await kube.create(self.top_path(namespace), workloads.evaluation(name, tasks, namespace=namespace))

    async def counters(self) -> dict[str, float]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as response,
        ):
            return reconcile_counts(await response.text())

    def outcome_of(self, obj: dict[str, Any]) -> str | None:
        phase = obj.get("status", {}).get("phase")
        return phase if phase in self.TERMINAL else None

    async def submit_live(self, kube: Kube, name: str, tasks: int, namespace: str) -> None:
        await kube.create(
            self.top_path(namespace), workloads.evaluation(name, tasks, suspend=True, namespace=namespace)
        )

    def live_settled(self, obj: dict[str, Any]) -> bool:
        return obj.get("status", {}).get("phase") in ("Suspended", "Queued")


def make_arm(key: str, jobset_dir: Path) -> Arm:
    arms: dict[str, Arm] = {"A0": RawJobs(), "A1": JobSetArm(jobset_dir), "A2": AssayArm()}
    if key not in arms:
        raise ValueError(f"unknown arm {key!r}: choose from {', '.join(arms)}")
    return arms[key]
