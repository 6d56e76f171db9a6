"""Kueue on the local cluster: its CRDs installed, its manager run on this machine (make kueue-up/down).

    .venv/bin/python hack/kueue.py up|down [--kubeconfig .cluster/kubeconfig]

`up` (idempotent) installs the CRDs hack/build-kueue.sh took from the module, then runs the manager it built
against the cluster, as Assay's own `--webhook local` does for its webhook
(assay/controller/admission/server.py):

* its webhooks served on 127.0.0.1 with a fresh self-signed certificate (assay's `build_self_signed`), and
  registered with `url: https://localhost:<port>/...` and that certificate as caBundle (Kueue's internal
  cert management off; the apiserver runs on this machine);
* only the webhooks of Kueue's own resources and of batch/v1 Jobs (the one integration enabled), the Job
  ones scoped to Jobs labelled kueue.x-k8s.io/queue-name: other Jobs of the cluster, which Kueue leaves
  alone anyway (manageJobsWithoutQueueName is false), never wait on it;
* leader election off, health, metrics and webhook on free local ports, the on-demand visibility server
  (a fixed port) off.

Ready when /readyz answers and a server-side dry run of a ResourceFlavor passes its webhooks. State, the log
and the pid are in .cluster/kueue/. `down` stops the manager (its pid, checked to be the manager) and
removes the webhook configurations, so that the cluster's Jobs are never refused by a webhook that is gone.

Kueue reads its metrics certificate from /etc/kueue/metrics/certs (fixed in its main.go when internal cert
management is off); `up` writes a self-signed one there if none is.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from assay.controller.admission.tls import build_self_signed

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = REPO_ROOT / ".cluster" / "kueue"
KUBECTL = REPO_ROOT / ".cluster" / "bin" / "kubectl"
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")
QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"
WEBHOOK_CONFIGURATIONS = {
    "MutatingWebhookConfiguration": "kueue-local-mutating",
    "ValidatingWebhookConfiguration": "kueue-local-validating",
}
READY_TIMEOUT_S = 120


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] kueue: {message}", file=sys.stderr, flush=True)


def build_dir() -> Path:
    versions = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(os.environ.get("ASSAY_CACHE", Path.home() / ".cache" / "assay"))
    return cache / "kueue" / versions["KUEUE_VERSION"]


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def must(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        raise SystemExit(f"kueue: {what} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def manager_pid() -> int | None:
    """The pid of this checkout's running manager, if it runs (a reused pid is not mistaken for it)."""
    try:
        pid = int((STATE_DIR / "manager.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"kueue-manager" in cmdline and str(STATE_DIR).encode() in cmdline else None


def local_webhooks(manifests: Path, url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """Kueue's webhook configurations, for its own resources and batch/v1 Jobs only, calling ``url``."""
    bundle = base64.b64encode(ca_pem).decode()
    configurations = []
    for document in yaml.safe_load_all(manifests.read_text()):
        if not document:
            continue
        kept = []
        for webhook in document["webhooks"]:
            groups = {group for rule in webhook["rules"] for group in rule["apiGroups"]}
            if groups == {"batch"}:
                webhook["objectSelector"] = {
                    "matchExpressions": [{"key": QUEUE_NAME_LABEL, "operator": "Exists"}]
                }
            elif groups != {"kueue.x-k8s.io"}:
                continue  # a framework not enabled here (pods, deployments, kubeflow, ray...)
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": f"{url}{path}", "caBundle": bundle}
            kept.append(webhook)
        name = WEBHOOK_CONFIGURATIONS[document["kind"]]
        configurations.append({**document, "metadata": {"name": name}, "webhooks": kept})
    return configurations


def manager_config(*, health: int, metrics: int, webhook: int, cert_dir: Path) -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": "kueue-system",
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics}"},
        "webhook": {"host": "127.0.0.1", "port": webhook, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "integrations": {"frameworks": ["batch/job"]},
    }


def ensure_metrics_certificate() -> None:
    if (METRICS_CERT_DIR / "tls.crt").exists() and (METRICS_CERT_DIR / "tls.key").exists():
        return
    try:
        METRICS_CERT_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(
            f"kueue: the manager reads its metrics certificate from {METRICS_CERT_DIR}, which cannot be "
            f"created ({exc}): create it writable for this user"
        ) from exc
    build_self_signed(["localhost"], datetime.now(UTC)).write_to(METRICS_CERT_DIR)


def ready(health_port: int, kubeconfig: Path) -> str | None:
    """None once the manager is ready and its webhooks admit; else what is still missing."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=2) as response:
            if response.status != 200:
                return f"/readyz answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"/readyz: {exc}"
    probe = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": "assay-readiness-probe"},
    }
    dry_run = kubectl(kubeconfig, "create", "--dry-run=server", "-f", "-", input=json.dumps(probe))
    return None if dry_run.returncode == 0 else f"webhook dry run: {dry_run.stderr.strip()}"


def up(kubeconfig: Path) -> None:
    start = time.monotonic()
    built = build_dir()
    if not (built / ".complete").exists():
        raise SystemExit(f"kueue: no build in {built}: run hack/build-kueue.sh (make kueue)")
    pid = manager_pid()
    state = STATE_DIR / "state.json"
    if pid is not None and state.exists():
        health = json.loads(state.read_text())["health"]
        if ready(health, kubeconfig) is None:
            log(f"already up (pid {pid})")
            return
        log(f"manager {pid} runs but is not ready: restarting it")
        stop_manager()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    must(
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(built / "crds")),
        "installing Kueue's CRDs",
    )
    must(
        kubectl(
            kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", str(built / "crds")
        ),
        "waiting for Kueue's CRDs",
    )
    if kubectl(kubeconfig, "get", "namespace", "kueue-system").returncode != 0:
        must(kubectl(kubeconfig, "create", "namespace", "kueue-system"), "creating namespace kueue-system")
    ensure_metrics_certificate()

    ports = {"health": free_port(), "metrics": free_port(), "webhook": free_port()}
    cert_dir = STATE_DIR / "certs"
    cert_dir.mkdir(exist_ok=True)
    certificate = build_self_signed(["localhost"], datetime.now(UTC))
    certificate.write_to(cert_dir)
    config = STATE_DIR / "config.yaml"
    config.write_text(yaml.safe_dump(manager_config(**ports, cert_dir=cert_dir)))
    webhooks = local_webhooks(
        built / "webhook-manifests.yaml", f"https://localhost:{ports['webhook']}", certificate.cert_pem
    )
    must(
        kubectl(
            kubeconfig,
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": webhooks}),
        ),
        "registering Kueue's webhooks",
    )
    with (STATE_DIR / "manager.log").open("ab") as out:
        process = subprocess.Popen(
            [
                str(built / "kueue-manager"),
                f"--config={config}",
                "--feature-gates=VisibilityOnDemand=false",
            ],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this script, as a cluster component
        )
    (STATE_DIR / "manager.pid").write_text(str(process.pid))
    state.write_text(json.dumps(ports))
    deadline = time.monotonic() + READY_TIMEOUT_S
    missing = ready(ports["health"], kubeconfig)
    while missing is not None:
        if process.poll() is not None:
            tail = (STATE_DIR / "manager.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"kueue: the manager exited with {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"kueue: not ready after {READY_TIMEOUT_S} s: {missing} (log: {STATE_DIR}/manager.log)"
            )
        time.sleep(0.5)
        missing = ready(ports["health"], kubeconfig)
    log(
        f"up in {time.monotonic() - start:.1f} s (pid {process.pid}, webhook :{ports['webhook']}, "
        f"log {STATE_DIR}/manager.log)"
    )


def stop_manager() -> None:
    pid = manager_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(40):
        if manager_pid() is None or not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.25)
    else:
        os.kill(pid, signal.SIGKILL)
    (STATE_DIR / "manager.pid").unlink(missing_ok=True)
    log(f"manager {pid} stopped")


def down(kubeconfig: Path) -> None:
    stop_manager()
    if kubeconfig.exists():
        for kind, name in WEBHOOK_CONFIGURATIONS.items():
            kubectl(kubeconfig, "delete", kind.lower(), name, "--ignore-not-found", "--request-timeout=10s")
    log("down (its CRDs stay installed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--kubeconfig", type=Path, default=REPO_ROOT / ".cluster" / "kubeconfig")
    args = parser.parse_args()
    (up if args.action == "up" else down)(args.kubeconfig.resolve())


if __name__ == "__main__":
    main()
