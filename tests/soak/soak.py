"""Soak: N evaluations (default 2,000) through one `assay-operator` process, its RSS sampled as they pass.

    make soak    # on the chaos cluster (hack/kwok-cluster.sh up chaos), started and stopped by make
    .venv/bin/python tests/soak/soak.py --kubeconfig .cluster/kubeconfig --evaluations 500

Each Evaluation is one task on the KWOK fake nodes; the pool's pod annotations make every pod succeed with a
summary as soon as it runs, so the operator does all the work of a real evaluation (Job, pod, status, summary)
and nothing else drives it. At most ``--in-flight`` are live at once; each finished one is checked (phase and
summary) and deleted, so the operator also forgets as many objects as it learns. The operator's RSS (from
/proc) is sampled every ``--sample-every`` finished evaluations; the growth per evaluation is the slope of a
least-squares line through the samples after the warm-up. Prints a JSON report and writes it to ``--out``.

It fails (exit 1) on a wrong or missing result, and when the growth after the warm-up exceeds
``--max-growth-kib`` per evaluation (default 3 KiB: the last measured figure was 0.73 over 2,000, flat after
the warm-up; a leak of one Evaluation's parsed object or status per evaluation is tens of KiB) plus
``ALLOCATOR_STEP_KIB`` in all (RSS grows in steps of about 1 MiB as the allocator takes arenas: 2.1 MiB
over 300 evaluations of a short run), or cannot be measured (fewer than two samples after the warm-up).
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "integration"), str(REPO / "tests")]

from operators import OperatorProcess  # noqa: E402

from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION  # noqa: E402
from assay.contract import result_message  # noqa: E402
from support import kubectl_binary  # noqa: E402

SUMMARY = {"accuracy": 0.5, "soak": 1}
# Growth allowed in all, on top of the per-evaluation bound: RSS moves in allocator steps of about 1 MiB.
ALLOCATOR_STEP_KIB = 2048


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points) or 1.0
    return num / den


def evaluation(name: str, namespace: str, pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "pool": pool,
            "model": {"name": "soak", "uri": "file:///models/soak"},
            "handler": "soak:Evaluator",
            "dataset": {"name": "soak", "uri": "file:///data/soak"},
            "resources": {"nvidia.com/gpu": "0", "cpu": "10m", "memory": "16Mi"},
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, default=REPO / ".cluster" / "chaos" / "kubeconfig")
    parser.add_argument("--evaluations", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=40)
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--warm-up", type=int, default=200, help="evaluations before the slope counts")
    parser.add_argument(
        "--max-growth-kib",
        type=float,
        default=3.0,
        help="fail above this RSS growth per evaluation after the warm-up, in KiB",
    )
    parser.add_argument("--out", type=Path, default=REPO / ".assay" / "soak" / "result.json")
    args = parser.parse_args()

    kubectl = [kubectl_binary(), "--kubeconfig", str(args.kubeconfig)]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-k", str(REPO / "crds")], check=True
    )
    api = config.new_client_from_config(config_file=str(args.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    namespace, pool = f"soak-{secrets.token_hex(3)}", f"soak-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    pod_annotations = {
        "kwok.assay.dev/outcome": "succeed",
        "kwok.assay.dev/message": result_message(SUMMARY),
    }
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        POOL_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ResourcePool",
            "metadata": {"name": pool},
            "spec": {
                "nodeSelector": {"type": "kwok"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "annotations": pod_annotations,
            },
        },
    )
    log_dir = Path(tempfile.mkdtemp(prefix="assay-soak-"))
    operator = OperatorProcess.start(
        "soak", kubeconfig=args.kubeconfig, namespaces=[namespace], log_dir=log_dir
    )
    samples: list[tuple[int, int]] = []
    created = done = wrong = 0
    live: set[str] = set()
    started = time.monotonic()
    try:
        while "Assay controller started" not in operator.log():
            if not operator.alive():
                raise RuntimeError(operator.log()[-4000:])
            time.sleep(0.2)
        samples.append((0, rss_kib(operator.process.pid)))
        while done < args.evaluations:
            while len(live) < args.in_flight and created < args.evaluations:
                name = f"s{created:05d}"
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, EVALUATION_PLURAL, evaluation(name, namespace, pool)
                )
                live.add(name)
                created += 1
            items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL)[
                "items"
            ]
            for item in items:
                status = item.get("status") or {}
                name = item["metadata"]["name"]
                if name not in live or status.get("phase") not in ("Succeeded", "Failed"):
                    continue
                if (
                    status.get("phase") != "Succeeded"
                    or (status.get("results") or {}).get("summary") != SUMMARY
                ):
                    wrong += 1
                    print(f"wrong end: {name}: {json.dumps(status)[:500]}", file=sys.stderr)
                try:
                    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, name)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                live.discard(name)
                done += 1
                if done % args.sample_every == 0:
                    samples.append((done, rss_kib(operator.process.pid)))
                    rate = done / (time.monotonic() - started)
                    print(f"{done} done, RSS {samples[-1][1]} KiB, {rate:.1f} evaluations/s", flush=True)
            if not operator.alive():
                raise RuntimeError(f"the operator exited:\n{operator.log()[-4000:]}")
            time.sleep(0.5)
        time.sleep(10)  # let it forget the last ones
        final = rss_kib(operator.process.pid)
    finally:
        operator.stop()
        core.delete_namespace(namespace)
        custom.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, pool)
    after_warm_up = [p for p in samples if p[0] >= args.warm_up]
    report = {
        "evaluations": done,
        "wrong": wrong,
        "seconds": round(time.monotonic() - started, 1),
        "rss_kib_start": samples[0][1],
        "rss_kib_at_warm_up": after_warm_up[0][1] if after_warm_up else None,
        "rss_kib_end": samples[-1][1],
        "rss_kib_final_idle": final,
        "growth_kib_per_evaluation": round(slope(after_warm_up), 3) if len(after_warm_up) > 1 else None,
        "samples": samples,
        "operator_log": str(operator.log_path),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
    measured_over = after_warm_up[-1][0] - after_warm_up[0][0] if after_warm_up else 0
    failures = leak_failures(report, args.max_growth_kib, measured_over)
    if wrong or done != args.evaluations:
        failures.append(f"{wrong} wrong and {args.evaluations - done} unfinished evaluations")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


def leak_failures(report: dict[str, Any], max_growth_kib: float, measured_over: int) -> list[str]:
    """Why the RSS growth over ``measured_over`` evaluations after the warm-up fails the soak: above the
    bound, or not measured at all."""
    growth = report["growth_kib_per_evaluation"]
    if growth is None or measured_over <= 0:
        return ["fewer than two RSS samples after the warm-up: run more evaluations to bound the growth"]
    bound = max_growth_kib + ALLOCATOR_STEP_KIB / measured_over
    if growth > bound:
        return [
            f"RSS grows {growth} KiB per evaluation over the {measured_over} after the warm-up, above "
            f"{bound:.2f} ({max_growth_kib} KiB and {ALLOCATOR_STEP_KIB} KiB in all)"
        ]
    return []


if __name__ == "__main__":
    sys.exit(main())
