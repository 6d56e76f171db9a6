"""Running `assay-operator` as a separate process, the way a pod runs it, and reading its metrics and log.

Used by the tests that need whole operator processes: high availability (two of them, one killed) and the
end-to-end run with the operator's own service-account credentials.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# The console script installed beside the interpreter running the tests (the project's venv).
OPERATOR_BIN = Path(sys.executable).with_name("assay-operator")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    """One `assay-operator` process; its output goes to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int
    health_port: int
    _log_file: object = field(repr=False, default=None)

    @classmethod
    def start(
        cls,
        name: str,
        *,
        kubeconfig: Path,
        namespaces: Sequence[str],
        log_dir: Path,
        peering: str = "",
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> OperatorProcess:
        metrics_port, health_port = free_port(), free_port()
        args = [
            str(OPERATOR_BIN),
            "--kubeconfig",
            str(kubeconfig),
            "--peering",
            peering,
            "--webhook",
            "none",
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            str(health_port),
            *[arg for namespace in namespaces for arg in ("--namespace", namespace)],
            *extra_args,
        ]
        log_path = log_dir / f"operator-{name}.log"
        log_file = log_path.open("wb")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_OPERATOR_")}
        process = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, env={**environment, **(env or {})}
        )
        return cls(name, process, log_path, metrics_port, health_port, log_file)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no withdrawal from peering, as when a node dies."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def scrape(self) -> str | None:
        """The /metrics text, or None while the endpoint does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
                return str(reply.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def healthy(self) -> bool:
        """Whether the liveness endpoint (what the Deployment's probes call) answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=5) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def samples(self, name: str, **labels: str) -> Iterator[float]:
        """Values of the samples called ``name`` whose labels include ``labels``."""
        text = self.scrape() or ""
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    yield sample.value

    def total(self, name: str, **labels: str) -> float:
        return sum(self.samples(name, **labels))
