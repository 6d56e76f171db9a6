"""Runs one arm of the benchmark on a fresh cluster and returns every figure it measured.

One arm's run: a fresh cluster and controller; the burst (every evaluation of the tier created at once, the
tier's headline figures); then a steady phase per arrival rate of the tier (evaluations created one by one at
that rate for ``steady_s``, each in its own namespace), whose latencies say what one user waits for on a
machine that is not saturated. The steady phases run on the burst's cluster rather than on fresh ones: a
cluster start per rate, arm and round would triple the tier's time, and by then the burst's evaluations have
all finished (the cluster holds them as history, as a real one would), so the machine is quiet again.

The memory with live evaluations is a run of its own (:func:`live_memory`): a fresh cluster and a fresh
controller process that is given nothing but the live (suspended) evaluations, so its RSS is their cost,
not the high-water mark of a tier it just ran.
"""

from __future__ import annotations

import asyncio
import fileinput
import json
import logging
import os
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import audit, cli_wall, procstat, report, workloads
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
    rounds: int = 3  # each arm this many times, interleaved (A0, A1, A2, A0, ...)
    # Steady arrival rates (evaluations a second), each for steady_s: below what the machine sustains (in
    # the burst on 2 cores, tier S: A0 about 4 evaluations a second, Assay 2; tier M: A0 2, Assay 0.9).
    rates: tuple[float, ...] = (0.5, 1.0)
    steady_s: float = 60


TIERS = {
    "smoke": Tier("smoke", 10, 4, 4, 200, 240, rounds=1, rates=(1.0, 2.0), steady_s=10),
    "S": Tier("S", 200, 8, 50, 5000, 900, rates=(0.5, 1.0)),
    # Every predict task of tier M gets a GPU at once: with 16,000 pods pending on 800 GPUs the scheduler
    # re-filters the whole queue on every pod that ends, and on 2 CPUs A0 alone ran past an hour (measured,
    # 2026-11-26): the figure would be the scheduler's, not the controllers'.
    "M": Tier("M", 1000, 16, 250, 5000, 3600, gpus_per_node=64, rates=(0.25, 0.5)),
}
CREATE_CONCURRENCY = 16  # create requests in flight at once
POD_MS = int(os.environ.get("BENCH_POD_MS", "1000"))
JOB_SYNCS = int(os.environ.get("BENCH_JOB_SYNCS", "20"))  # the controller-manager's concurrent Job syncs
CLI_CALLS = 3  # each CLI command's wall time is the median of this many calls


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


def steady_namespace(rate: float) -> str:
    """The namespace of the steady phase at ``rate`` evaluations a second: bench-rate-2, bench-rate-0-5."""
    return "bench-rate-" + f"{rate:g}".replace(".", "-")


async def _bounded(concurrency: int, coros: list[Any]) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(c: Any) -> None:
        async with semaphore:
            await c

    await asyncio.gather(*(one(c) for c in coros))


async def _create(arm: Arm, kube: Kube, recorder: Recorder, name: str, tasks: int, namespace: str) -> None:
    """One evaluation's top object, its request stamped when sent and when answered."""
    recorder.times[name].created = time.time()
    await arm.submit(kube, name, tasks, namespace)
    recorder.times[name].create_returned = time.time()


async def _create_all(arm: Arm, kube: Kube, recorder: Recorder, tasks: int, namespace: str) -> None:
    await _bounded(
        CREATE_CONCURRENCY, [_create(arm, kube, recorder, n, tasks, namespace) for n in recorder.times]
    )


def _audit_counts(start: float, end: float) -> tuple[Counter[tuple[str, str, str]], set[str]]:
    # audit-<time>.log too: an apiserver that rotated its log (100 MB by default) moved the early requests.
    paths = sorted((kwok_workdir() / "logs").glob("audit*.log"))
    with fileinput.input(paths) as lines:
        return audit.count_requests(lines, start, end)


async def _namespace_with_storage(kube: Kube, namespace: str) -> None:
    """The namespace and the claim its task pods mount, awaited Bound (else the scheduler waits for it)."""
    await kube.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    await kube.apply_all(workloads.storage(namespace))
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{workloads.CLAIM}"
    for _ in range(240):
        claim = await kube.request("GET", path)
        if claim.get("status", {}).get("phase") == "Bound":
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"claim {namespace}/{workloads.CLAIM} not Bound after 60 s")


async def _create_paced(
    arm: Arm, kube: Kube, recorder: Recorder, tasks: int, namespace: str, rate: float
) -> None:
    """Open loop: evaluation i is created at i / rate seconds, whether or not the earlier ones returned."""
    start = time.monotonic()
    in_flight: list[asyncio.Task[None]] = []
    for i, name in enumerate(recorder.times):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))  # the arrival schedule
        in_flight.append(asyncio.create_task(_create(arm, kube, recorder, name, tasks, namespace)))
    await asyncio.gather(*in_flight)


async def _phase(
    arm: Arm, kube: Kube, tier: Tier, namespace: str, count: int, rate: float | None
) -> dict[str, Any]:
    """``count`` evaluations in ``namespace``, all at once (``rate`` None) or ``rate`` a second, awaited;
    their latencies, and the CPU the cluster and the controller spent from the first create to the end."""

    async def on_job(name: str, job: dict[str, Any]) -> None:
        await arm.on_job(kube, name, job, tier.tasks)

    recorder = Recorder(
        kube, [workloads.eval_name(i) for i in range(count)], job_label=arm.job_label,
        pod_label=arm.pod_label, outcome_of=arm.outcome_of, top_path=arm.top_path(namespace), on_job=on_job,
    )  # fmt: skip
    await recorder.start(namespace)
    components = procstat.kwok_component_pids(kwok_workdir())
    cpu_before = procstat.cpu_of(components)
    ctrl_before = procstat.sample(arm.controller.pid) if arm.controller else None
    what = "at once" if rate is None else f"{rate:g} a second"
    log.info("%s: %d evaluations x %d tasks in %s, %s", arm.key, count, tier.tasks, namespace, what)
    if rate is None:
        await _create_all(arm, kube, recorder, tier.tasks, namespace)
    else:
        await _create_paced(arm, kube, recorder, tier.tasks, namespace, rate)
    try:
        await asyncio.wait_for(recorder.all_finished.wait(), timeout=tier.timeout_s)
    except TimeoutError:
        log.error("%s: %d evaluations unfinished after %d s", arm.key, recorder.unfinished(), tier.timeout_s)
    cpu_after = procstat.cpu_of(components)
    ctrl_after = procstat.sample(arm.controller.pid) if arm.controller else None
    await recorder.stop()
    if arm.controller:
        arm.controller.check_alive()
    times = recorder.times.values()
    result: dict[str, Any] = dict(summarize(recorder.times))
    result["window"] = [
        min(t.created for t in times if t.created),
        max((t.finished for t in times if t.finished), default=time.time()),
    ]
    result["control_plane_cpu_s"] = {
        k: round(cpu_after[k] - v, 2) for k, v in cpu_before.items() if k in cpu_after
    }
    controller_cpu = 0.0
    if ctrl_before and ctrl_after:
        controller_cpu = ctrl_after.cpu_s - ctrl_before.cpu_s
        result["controller"] = {
            "cpu_s": round(controller_cpu, 2),
            "peak_rss_mib": round(ctrl_after.peak_rss_mib, 1),
            "rss_mib": round(ctrl_after.rss_mib, 1),
        }
    all_in = sum(result["control_plane_cpu_s"].values()) + controller_cpu
    result["all_in_cpu_s"] = round(all_in, 2)
    result["all_in_cpu_per_eval_s"] = round(all_in / max(count, 1), 3)
    return result


async def _live_memory(arm: Arm, kube: Kube, tier: Tier) -> dict[str, Any]:
    """Create ``tier.live`` suspended evaluations in two halves; after each, once the controller processed
    them, read its RSS."""
    assert arm.controller is not None
    pid = arm.controller.pid
    settled: set[str] = set()
    enough = asyncio.Event()
    wanted = 0

    async def watch() -> None:
        resource_version = None
        while True:
            try:
                async for event in kube.watch(arm.top_path(LIVE_NAMESPACE) or "", resource_version):
                    resource_version = event.obj.get("metadata", {}).get("resourceVersion", resource_version)
                    if event.type != "BOOKMARK" and arm.live_settled(event.obj):
                        settled.add(event.obj["metadata"]["name"])
                        if len(settled) >= wanted:
                            enough.set()
            except (TimeoutError, OSError, ValueError) as exc:
                log.warning("live watch interrupted: %s", exc)
                await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    empty = procstat.sample(pid)
    start = time.time()
    half = tier.live // 2
    rss_at: dict[int, float | None] = {0: round(empty.rss_mib, 1) if empty else None}
    for first, last in ((0, half), (half, tier.live)):
        wanted = last
        enough.clear()
        await _bounded(
            CREATE_CONCURRENCY,
            [arm.submit_live(kube, f"live-{i:05d}", tier.tasks, LIVE_NAMESPACE) for i in range(first, last)],
        )
        try:
            await asyncio.wait_for(enough.wait(), timeout=max(300.0, tier.live * 0.2))
        except TimeoutError:
            log.warning("only %d of %d live evaluations settled", len(settled), last)
        await asyncio.sleep(2)  # let the controller finish what it does after the last status write
        now = procstat.sample(pid)
        rss_at[last] = round(now.rss_mib, 1) if now else None
    settled_at = time.time()
    watcher.cancel()
    after = procstat.sample(pid)
    counts, _ = await asyncio.to_thread(_audit_counts, start, settled_at)
    writes = sum(
        n
        for (client, verb, _r), n in counts.items()
        if client == audit.CONTROLLER and verb in audit.WRITE_VERBS
    )
    rss_half, rss_all = rss_at.get(half), rss_at.get(tier.live)
    growth = (
        round((rss_all - rss_half) * 1024 / (tier.live - half), 2)
        if rss_half is not None and rss_all is not None and tier.live > half
        else None
    )
    return {
        "live_evaluations": tier.live,
        "settled": len(settled),
        "settle_s": round(settled_at - start, 2),
        "rss_mib_at": {str(k): v for k, v in rss_at.items()},
        "rss_mib": rss_all,
        "growth_kib_per_evaluation": growth,
        "peak_rss_mib": round(after.peak_rss_mib, 1) if after else None,
        "cpu_s": round(after.cpu_s - empty.cpu_s, 2) if after and empty else None,
        "controller_writes_per_live_evaluation": round(writes / max(tier.live, 1), 2),
    }


def _cli_times(kubeconfig: Path, kubectl: Path) -> dict[str, dict[str, float]]:
    """Wall and CPU time (s, medians of CLI_CALLS) of ``assay list -A`` and ``assay get`` on the cluster as it
    is, and beside them the wall time of ``kubectl get evaluations -A``: how fast the cluster answers then."""
    cli_wall.compile_bytecode()
    argvs = {
        "assay list -A": cli_wall.assay_argv(kubeconfig, ["list", "-A"]),
        "assay get": cli_wall.assay_argv(
            kubeconfig, ["get", workloads.eval_name(0), "-n", workloads.NAMESPACE]
        ),
        "kubectl get evaluations -A": [
            str(kubectl),
            "--kubeconfig",
            str(kubeconfig),
            "get",
            "evaluations",
            "-A",
        ],
    }
    runs = cli_wall.command_timings(argvs, CLI_CALLS)
    return {
        "wall_s": {label: round(statistics.median(w for w, _ in found), 3) for label, found in runs.items()},
        "cpu_s": {label: round(statistics.median(c for _, c in found), 3) for label, found in runs.items()},
    }


async def run_arm(
    arm: Arm, tier: Tier, work_dir: Path, *, keep: bool = False, profile: bool = False
) -> dict[str, Any]:
    """Fresh cluster, the arm's controller, the burst then the steady phases, figures collected.

    ``keep``: leave the cluster running afterwards (to look into it; the next arm replaces it).
    ``profile``: sample the controller with py-spy during the burst (it costs some CPU)."""
    log.info("%s (%s): starting a fresh cluster (%d nodes)", arm.key, arm.title, tier.nodes)
    cluster_up(tier)
    kubeconfig = BENCH_STATE / "kubeconfig"
    kube = Kube(kubeconfig, work_dir / "tls", connections=CREATE_CONCURRENCY + 8)
    kubectl = cached_binary("k8s", "KUBE_VERSION", "kubectl")
    ctx = Context(kube, kubeconfig, kubectl, work_dir)
    result: dict[str, Any] = {"arm": arm.key, "title": arm.title, "loadavg_at_start": _loadavg()}
    try:
        await _namespace_with_storage(kube, workloads.NAMESPACE)
        await arm.setup(ctx)
        profiler = (
            Profiler(arm.controller.pid, work_dir / "profile.txt") if profile and arm.controller else None
        )
        counters_before = await arm.counters()
        result.update(await _phase(arm, kube, tier, workloads.NAMESPACE, tier.evaluations, None))
        counters_after = await arm.counters()
        result["controller_counts_per_eval"] = {
            k: round((v - counters_before.get(k, 0.0)) / tier.evaluations, 2)
            for k, v in counters_after.items()
        }
        if profiler is not None:
            result["profile"] = profiler.stop()
        result["control_plane_rss_mib"] = procstat.rss_of(procstat.kwok_component_pids(kwok_workdir()))
        await asyncio.sleep(1.5)  # the apiserver's batched audit backend flushes about once a second
        start, end = result["window"]
        counts, agents = await asyncio.to_thread(_audit_counts, start - 0.05, end + 0.5)
        result["api"] = audit.per_evaluation(counts, tier.evaluations)
        result["api"]["controller_user_agents"] = sorted(agents)
        result["api"]["audit_events_lost"] = audit.events_lost(await kube.text("/metrics"))
        if arm.cli_timed:
            cli = await asyncio.to_thread(_cli_times, kubeconfig, kubectl)
            result["cli_wall_s"], result["cli_cpu_s"] = cli["wall_s"], cli["cpu_s"]
        result["steady"] = {}
        for rate in tier.rates:
            namespace = steady_namespace(rate)
            await _namespace_with_storage(kube, namespace)
            count = max(1, round(rate * tier.steady_s))
            result["steady"][f"{rate:g}"] = await _phase(arm, kube, tier, namespace, count, rate)
        if arm.controller:  # the high-water mark of the whole run: burst and steady phases
            after = procstat.sample(arm.controller.pid)
            if after is not None and "controller" in result:
                result["controller"]["peak_rss_mib"] = round(after.peak_rss_mib, 1)
    finally:
        arm.teardown()
        await kube.close()
        if not keep:
            cluster_down()
    result["loadavg_at_end"] = _loadavg()
    return result


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


async def live_memory(arm: Arm, tier: Tier, work_dir: Path) -> dict[str, Any]:
    """A fresh cluster and controller process, given ``tier.live`` suspended evaluations in two halves:
    its RSS at 0, half and all of them, and the growth per live evaluation over the second half (which
    leaves out what the first evaluations load once)."""
    log.info("%s: memory with %d live suspended evaluations, fresh cluster and process", arm.key, tier.live)
    cluster_up(tier)
    kubeconfig = BENCH_STATE / "kubeconfig"
    kube = Kube(kubeconfig, work_dir / "tls", connections=CREATE_CONCURRENCY + 8)
    ctx = Context(kube, kubeconfig, cached_binary("k8s", "KUBE_VERSION", "kubectl"), work_dir)
    try:
        await _namespace_with_storage(kube, LIVE_NAMESPACE)
        await arm.setup(ctx)
        return await _live_memory(arm, kube, tier)
    finally:
        arm.teardown()
        await kube.close()
        cluster_down()
