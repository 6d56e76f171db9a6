"""Wall and CPU time of ``assay list -A`` and ``assay get``, and the CLI's import time, on a running cluster.

``python -m benchmarks.cli_wall --kubeconfig .cluster/kubeconfig --populate 200`` first gives the cluster 200
finished Evaluations (the CRDs, a pool of the fake a100 nodes, and, while the operator runs them to
``Succeeded``, kwok's optional stage that completes Assay's task pods: removed after, the tests drive pods
themselves), then prints the figures: the median (and min, max) wall and CPU time of ``--calls`` calls of
each command, and the median import time of what they load (``assay.cli.main`` and ``assay.client``, by
``python -X importtime``), the package byte-compiled first as pip would (:func:`compile_bytecode`). Without
``--populate`` it measures the cluster as it is. The benchmark protocol (``run.py``) times the same commands
with :func:`command_timings` right after each A2 burst.

Figures only, no assertions: the goal (≤ 0.5 s with 200 Evaluations) is read off the output.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"
NAMESPACE = "cli-bench"
POOL = "cli-bench"
SUMMARY = '{"summary":{"accuracy":0.953,"macro avg/f1":0.94,"loss":0.2},"records":10000}'


def timings(
    kubeconfig: Path, commands: Mapping[str, Sequence[str]], calls: int, assay: Path = VENV_BIN / "assay"
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each of ``calls`` runs of each ``assay`` command; a command that fails has no
    entry. The CPU time (user + system) of the command's process says what it costs on a machine others
    load too."""
    argvs = {label: assay_argv(kubeconfig, args, assay) for label, args in commands.items()}
    return command_timings(argvs, calls)


def assay_argv(kubeconfig: Path, args: Sequence[str], assay: Path = VENV_BIN / "assay") -> list[str]:
    """The command line of ``assay ARGS`` on the cluster of ``kubeconfig``."""
    return [str(assay), *args, "--kubeconfig", str(kubeconfig)]


def command_timings(argvs: Mapping[str, Sequence[str]], calls: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each of ``calls`` runs of each command line; one that fails has no entry."""
    out: dict[str, list[tuple[float, float]]] = {}
    for label, argv in argvs.items():
        runs = []
        for _ in range(calls):
            cpu_before = _children_cpu()
            start = time.monotonic()
            done = subprocess.run(list(argv), capture_output=True, text=True)
            if done.returncode != 0:  # a figure missing, not the caller's other figures lost
                print(f"{label} failed ({done.returncode}): {done.stderr.strip()[-500:]}", file=sys.stderr)
                break
            runs.append((time.monotonic() - start, _children_cpu() - cpu_before))
        else:
            out[label] = runs
    return out


def compile_bytecode(package: Path = REPO_ROOT / "operator" / "assay") -> None:
    """Byte-compile Assay as pip does when it installs a wheel, so that the timings are an installed CLI's.
    The editable install leaves it to the first import, which PYTHONDONTWRITEBYTECODE (set on these
    machines) turns off: every call would compile its 37 modules again, 60 ms of ``list -A``'s 0.4 s."""
    compileall.compile_dir(package, quiet=1)


def kubectl_binary() -> str:
    return shutil.which("kubectl") or str(REPO_ROOT / ".cluster" / "bin" / "kubectl")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_times(modules: Sequence[str], calls: int, python: Path = VENV_BIN / "python") -> list[float]:
    """Seconds to import ``modules`` in a fresh interpreter, as ``python -X importtime`` counts them (each
    module's own line, what it imports included)."""
    times = []
    for _ in range(calls):
        done = subprocess.run(
            [str(python), "-X", "importtime", "-c", f"import {', '.join(modules)}"],
            capture_output=True,
            text=True,
            check=True,
        )
        total = 0
        for module in modules:
            line = re.search(rf"\|\s*(\d+) \| {re.escape(module)}\s*$", done.stderr, re.MULTILINE)
            if line is None:
                raise RuntimeError(f"no import time of {module} in: {done.stderr[-300:]}")
            total += int(line.group(1))
        times.append(total / 1e6)
    return times


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _objects(count: int) -> list[dict[str, Any]]:
    pool = {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "ResourcePool",
        "metadata": {"name": POOL},
        "spec": {
            "description": "The fake a100 nodes, for the CLI benchmark",
            "nodeSelector": {"assay.dev/pool-node": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "resources": [{"name": "cpu", "default": "100m", "max": "8"}],
            "pricing": {"currency": "USD", "perHour": {"cpu": "0.50"}},
            # Read by hack/kwok/optional/assay-pods-succeed.yaml: the summary the evaluate pods report.
            "annotations": {"kwok.assay.dev/auto-complete-after": "1s", "kwok.assay.dev/message": SUMMARY},
        },
    }
    evaluations = [
        {
            "apiVersion": "assay.dev/v1alpha1",
            "kind": "Evaluation",
            "metadata": {"name": eval_name(i), "namespace": NAMESPACE, "labels": {"team": "bench"}},
            "spec": {
                "pool": POOL,
                "model": {"name": "cnn", "version": f"v{i}", "uri": "file:///models/m"},
                "handler": "mnist_eval:MNISTEvaluator",
                "dataset": {"name": "mnist-test", "version": "v1", "uri": "file:///data/mnist"},
                "runtime": {"name": "pytorch", "version": "2.4", "image": "assay-runner:fake"},
                "tasks": 2,
            },
        }
        for i in range(count)
    ]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    return [namespace, pool, *evaluations]


def eval_name(i: int) -> str:
    return f"cnn-v{i}-on-mnist"


def populate(kubeconfig: Path, count: int) -> None:
    """``count`` Succeeded Evaluations in NAMESPACE, run by the operator on the fake nodes."""
    _kubectl(kubeconfig, "apply", "--server-side", "-k", str(REPO_ROOT / "crds"))
    _kubectl(kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    stage = REPO_ROOT / "hack" / "kwok" / "optional" / "assay-pods-succeed.yaml"
    _kubectl(kubeconfig, "apply", "-f", str(stage))
    items = {"apiVersion": "v1", "kind": "List", "items": _objects(count)}
    _kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(items))
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / "cli-bench-operator.log"
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [
                str(VENV_BIN / "assay-operator"),
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                NAMESPACE,
                "--peering",
                "",
                "--webhook",
                "none",
                "--metrics-port",
                "0",
                "--health-port",
                "0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            start = time.monotonic()
            _kubectl(
                kubeconfig,
                "wait",
                "-n",
                NAMESPACE,
                "evaluations",
                "--all",
                "--for=jsonpath={.status.phase}=Succeeded",
                "--timeout=600s",
            )
            print(f"{count} Evaluations Succeeded in {time.monotonic() - start:.0f} s", file=sys.stderr)
        finally:
            operator.terminate()
            operator.wait(timeout=30)
            _kubectl(kubeconfig, "delete", "-f", str(stage))


def _figure(values: Sequence[float]) -> str:
    return (
        f"{statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_wall", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", type=Path, default=REPO_ROOT / ".cluster" / "kubeconfig")
    parser.add_argument("--populate", type=int, default=0, metavar="N", help="first create N Evaluations")
    parser.add_argument("--calls", type=int, default=10, help="calls per command (default 10)")
    args = parser.parse_args(argv)
    if args.populate:
        populate(args.kubeconfig, args.populate)
    listed = _kubectl(args.kubeconfig, "get", "evaluations", "-A", "--no-headers")
    print(f"Evaluations in the cluster: {len(listed.splitlines())}")
    commands = {
        "assay list -A": ["list", "-A"],
        "assay get": ["get", eval_name(0), "-n", NAMESPACE],
    }
    compile_bytecode()
    for label, runs in timings(args.kubeconfig, commands, args.calls).items():
        print(f"{label:<16} wall {_figure([wall for wall, _ in runs])}")
        print(f"{'':<16} CPU  {_figure([cpu for _, cpu in runs])}")
    # What `assay list` and `assay get` import: the command line, then the SDK when the command runs.
    imports = import_times(["assay.cli.main", "assay.client"], args.calls)
    print(f"{'import assay.cli.main, assay.client':<16} {_figure(imports)}")


if __name__ == "__main__":
    main()
