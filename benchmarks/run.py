"""Runs one arm of the benchmark on a fresh cluster and returns every figure it measured."""

from __future__ import annotations

import asyncio
import fileinput
import json
import logging
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import audit, procstat, report, workloads
from .arms import REPO_ROOT, Arm, Context
from .kube import Kube
from .profile import Profiler
from .recorder import Recorder
from .stats import summarize

log = logging.getLogger("bench")
CLUSTER_SCRIPT = REPO_ROOT / "hack" / "kwok-cluster.sh"
# The benchmark cluster: hack/kwok-cluster.sh's role "bench", a cluster of its own beside the test cluster.
CLUSTER_ROLE = "bench"
BENCH_STATE = REPO_ROOT / ".cluster" / CLUSTER_ROLE
BENCH_KWOK = REPO_ROOT / "benchmarks" / "kwok"
LIVE_NAMESPACE = "bench-live"


@dataclass(frozen=True)
class Tier:
    name: str
    evaluations: int
    tasks: int
    nodes: int  # fake nodes of gpus_per_node GPUs
    live: int  # suspended evaluations for the memory figure
    timeout_s: float  # for all evaluations to finish
    gpus_per_node: int = 8


TIERS = {
    "smoke": Tier("smoke", 10, 4, 4, 200, 240),
    "S": Tier("S", 200, 8, 50, 5000, 900),
    # Every predict task of tier M gets a GPU at once: with 16,000 pods pending on 800 GPUs the scheduler
    # re-filters the whole queue on every pod that ends, and on 2 CPUs A0 alone ran past an hour (measured,
    # 2026-11-26): the figure would be the scheduler's, not the controllers'.
    "M": Tier("M", 1000, 16, 250, 5000, 3600, gpus_per_node=64),
}
CREATE_CONCURRENCY = 16  # create requests in flight at once
POD_MS = int(os.environ.get("BENCH_POD_MS", "1000"))
JOB_SYNCS = int(os.environ.get("BENCH_JOB_SYNCS", "20"))  # the controller-manager's concurrent Job syncs


def cached_binary(component: str, version_key: str, name: str) -> Path:
    """A binary built by hack/build-*.sh: $ASSAY_CACHE/<component>/<version>/<name>."""
    cache = Path(os.environ.get("ASSAY_CACHE", Path.home() / ".cache" / "assay"))
    return cache / component / report.versions()[version_key] / name


def kwok_workdir() -> Path:
    name = subprocess.run(
        [str(CLUSTER_SCRIPT), "name", CLUSTER_ROLE], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok")) / "clusters" / name


def cluster_up(tier: Tier) -> None:
    """A fresh benchmark cluster for one arm (README "The cluster"): the tier's nodes, every Job's pods ending
    POD_MS after they run, no QPS limits, JOB_SYNCS Job syncs, an audit log of every request."""
    BENCH_STATE.mkdir(parents=True, exist_ok=True)
    nodes = BENCH_STATE / "nodes.json"
    nodes.write_text(json.dumps(workloads.nodes(tier.nodes, tier.gpus_per_node)))
    stage = BENCH_STATE / "pod-auto-complete.yaml"
    template = (BENCH_KWOK / "pod-auto-complete-bench.yaml").read_text()
    stage.write_text(workloads.pod_auto_complete_stage(template, POD_MS))
    subprocess.run(
        [
            str(CLUSTER_SCRIPT), "up", CLUSTER_ROLE, "--fresh",
            "--config", str(BENCH_KWOK / "kwokctl.yaml"),
            "--nodes", str(nodes),
            "--stage", str(stage),
            "--audit", str(BENCH_KWOK / "audit-policy.yaml"),
            "--disable-qps-limits",
            "--", "--extra-args", f"kube-controller-manager=concurrent-job-syncs={JOB_SYNCS}",
        ],
        check=True,
    )  # fmt: skip


def cluster_down() -> None:
    subprocess.run([str(CLUSTER_SCRIPT), "down", CLUSTER_ROLE], check=True)


async def _bounded(concurrency: int, coros: list[Any]) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(c: Any) -> None:
        async with semaphore:
            await c

    await asyncio.gather(*(one(c) for c in coros))


async def _create_all(arm: Arm, kube: Kube, recorder: Recorder, tier: Tier) -> None:
    async def create(name: str) -> None:
        recorder.times[name].created = time.time()
        await arm.submit(kube, name, tier.tasks)
        recorder.times[name].create_returned = time.time()

    await _bounded(CREATE_CONCURRENCY, [create(n) for n in recorder.times])


def _audit_counts(start: float, end: float) -> tuple[Counter[tuple[str, str, str]], set[str]]:
    # audit-<time>.log too: an apiserver that rotated its log (100 MB by default) moved the early requests.
    paths = sorted((kwok_workdir() / "logs").glob("audit*.log"))
    with fileinput.input(paths) as lines:
        return audit.count_requests(lines, start, end)


async def _storage(kube: Kube, namespace: str) -> None:
    """The claim the task pods mount, created and awaited Bound (the scheduler waits for it otherwise)."""
    await kube.apply_all(workloads.storage(namespace))
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{workloads.CLAIM}"
    for _ in range(240):
        claim = await kube.request("GET", path)
        if claim.get("status", {}).get("phase") == "Bound":
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"claim {namespace}/{workloads.CLAIM} not Bound after 60 s")


async def _live_memory(arm: Arm, kube: Kube, tier: Tier) -> dict[str, Any]:
    """Create ``tier.live`` suspended evaluations, wait until the controller processed them, read its RSS."""
    assert arm.controller is not None
    await kube.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LIVE_NAMESPACE}}
    )
    await _storage(kube, LIVE_NAMESPACE)
    settled: set[str] = set()
    done = asyncio.Event()

    async def watch() -> None:
        resource_version = None
        while not done.is_set():
            try:
                async for event in kube.watch(arm.live_path(LIVE_NAMESPACE), resource_version):
                    resource_version = event.obj.get("metadata", {}).get("resourceVersion", resource_version)
                    if event.type != "BOOKMARK" and arm.live_settled(event.obj):
                        settled.add(event.obj["metadata"]["name"])
                        if len(settled) >= tier.live:
                            done.set()
                            return
            except (TimeoutError, OSError, ValueError) as exc:
                log.warning("live watch interrupted: %s", exc)
                await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    before = procstat.sample(arm.controller.pid)
    start = time.time()
    await _bounded(
        CREATE_CONCURRENCY,
        [arm.submit_live(kube, f"live-{i:05d}", tier.tasks, LIVE_NAMESPACE) for i in range(tier.live)],
    )
    created = time.time()
    try:
        await asyncio.wait_for(done.wait(), timeout=max(300.0, tier.live * 0.2))
    except TimeoutError:
        log.warning("only %d of %d live evaluations settled", len(settled), tier.live)
    watcher.cancel()
    settled_at = time.time()
    await asyncio.sleep(2)  # let the controller finish what it does after the last status write
    after = procstat.sample(arm.controller.pid)
    counts, _ = await asyncio.to_thread(_audit_counts, start, settled_at + 2)
    writes = sum(
        n
        for (client, verb, _r), n in counts.items()
        if client == audit.CONTROLLER and verb in audit.WRITE_VERBS
    )
    return {
        "live_evaluations": tier.live,
        "controller_writes_per_live_evaluation": round(writes / max(tier.live, 1), 2),
        "settled": len(settled),
        "create_s": round(created - start, 2),
        "settle_s": round(settled_at - start, 2),
        "rss_before_mib": round(before.rss_mib, 1) if before else None,
        "rss_mib": round(after.rss_mib, 1) if after else None,
        "peak_rss_mib": round(after.peak_rss_mib, 1) if after else None,
        "cpu_s": round(after.cpu_s - before.cpu_s, 2) if after and before else None,
    }


async def run_arm(
    arm: Arm, tier: Tier, work_dir: Path, *, live: bool, keep: bool = False, profile: bool = False
) -> dict[str, Any]:
    """Fresh cluster, the arm's controller, every evaluation created and awaited, figures collected.

    ``keep``: leave the cluster running afterwards (to look into it; the next arm replaces it).
    ``profile``: sample the controller with py-spy while the evaluations run (it costs some CPU)."""
    log.info("%s (%s): starting a fresh cluster (%d nodes)", arm.key, arm.title, tier.nodes)
    cluster_up(tier)
    kubeconfig = BENCH_STATE / "kubeconfig"
    kube = Kube(kubeconfig, work_dir / "tls", connections=CREATE_CONCURRENCY + 8)
    kubectl = cached_binary("k8s", "KUBE_VERSION", "kubectl")
    ctx = Context(kube, kubeconfig, kubectl, work_dir)
    result: dict[str, Any] = {"arm": arm.key, "title": arm.title}
    try:
        await kube.create("/api/v1/namespaces", workloads.namespace())
        await _storage(kube, workloads.NAMESPACE)
        await arm.setup(ctx)
        names = [workloads.eval_name(i) for i in range(tier.evaluations)]

        async def on_job(name: str, job: dict[str, Any]) -> None:
            await arm.on_job(kube, name, job, tier.tasks)

        recorder = Recorder(
            kube, names, job_label=arm.job_label, pod_label=arm.pod_label,
            outcome_of=arm.outcome_of, top_path=arm.top_path, on_job=on_job,
        )  # fmt: skip
        await recorder.start(workloads.NAMESPACE)
        components = procstat.kwok_component_pids(kwok_workdir())
        cpu_before = procstat.cpu_of(components)
        ctrl_before = procstat.sample(arm.controller.pid) if arm.controller else None
        profiler = (
            Profiler(arm.controller.pid, work_dir / "profile.txt") if profile and arm.controller else None
        )

        counters_before = await arm.counters()
        log.info("%s: creating %d evaluations x %d tasks", arm.key, tier.evaluations, tier.tasks)
        await _create_all(arm, kube, recorder, tier)
        try:
            await asyncio.wait_for(recorder.all_finished.wait(), timeout=tier.timeout_s)
        except TimeoutError:
            log.error(
                "%s: %d evaluations unfinished after %d s", arm.key, recorder.unfinished(), tier.timeout_s
            )
        if arm.controller:
            arm.controller.check_alive()
        summary = summarize(recorder.times)
        window = (
            min(t.created for t in recorder.times.values() if t.created),
            max((t.finished for t in recorder.times.values() if t.finished), default=time.time()),
        )
        cpu_after = procstat.cpu_of(components)
        ctrl_after = procstat.sample(arm.controller.pid) if arm.controller else None
        counters_after = await arm.counters()
        result["controller_counts_per_eval"] = {
            k: round((v - counters_before.get(k, 0.0)) / tier.evaluations, 2)
            for k, v in counters_after.items()
        }
        if profiler is not None:
            result["profile"] = profiler.stop()
        await recorder.stop()
        result.update(summary)
        result["control_plane_cpu_s"] = {
            k: round(cpu_after[k] - v, 2) for k, v in cpu_before.items() if k in cpu_after
        }
        result["control_plane_rss_mib"] = procstat.rss_of(components)
        if ctrl_before and ctrl_after:
            result["controller"] = {
                "cpu_s": round(ctrl_after.cpu_s - ctrl_before.cpu_s, 2),
                "peak_rss_mib": round(ctrl_after.peak_rss_mib, 1),
                "rss_mib": round(ctrl_after.rss_mib, 1),
            }
        await asyncio.sleep(1.5)  # the apiserver's batched audit backend flushes about once a second
        counts, agents = await asyncio.to_thread(_audit_counts, window[0] - 0.05, window[1] + 0.5)
        result["api"] = audit.per_evaluation(counts, tier.evaluations)
        result["api"]["controller_user_agents"] = sorted(agents)
        result["api"]["audit_events_lost"] = audit.events_lost(await kube.text("/metrics"))
        if live and arm.live_supported and arm.controller:
            log.info("%s: memory with %d live suspended evaluations", arm.key, tier.live)
            result["live"] = await _live_memory(arm, kube, tier)
    finally:
        arm.teardown()
        await kube.close()
        if not keep:
            cluster_down()
    return result
