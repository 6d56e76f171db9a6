"""The results: machine facts, a table per run, ratios A2/A0 and A2/A1, written as JSON and Markdown."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .audit import WRITE_VERBS
from .stats import ratio

REPO_ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?"
    )
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_total_gib": round(int(meminfo.split()[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (REPO_ROOT / "hack" / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value
    for package in ("assay", "kopf", "kubernetes-asyncio", "aiohttp"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    try:
        out["assay_commit"] = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["assay_commit"] = "?"
    return out


def controller_writes(arm: dict[str, Any], *, besides_jobs: bool) -> float | None:
    """Writes per evaluation by the arm's own client: the controller (A1, A2) or the benchmark (A0)."""
    api = arm.get("api")
    if not api:
        return None
    client = "bench" if arm["arm"] == "A0" else "controller"
    total: int = 0
    for row in api["raw"]:
        if row["client"] != client or row["verb"] not in WRITE_VERBS:
            continue
        if besides_jobs and row["verb"] == "create" and row["resource"] == "jobs.batch":
            continue
        total += int(row["count"])
    return round(total / max(int(arm["evaluations"]), 1), 2)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


ROWS: list[tuple[str, Any]] = [
    ("evaluations finished", lambda a: f"{a.get('finished')}/{a.get('evaluations')}"),
    ("outcomes", lambda a: ", ".join(f"{k} {v}" for k, v in sorted(a.get("outcomes", {}).items()))),
    ("total time, first create -> last finished (s)", lambda a: a.get("total_s")),
    ("create request (with webhooks) p50 / p99 (ms)", lambda a: _pair(a.get("create_request"))),
    ("create -> Job created p50 / p99 (ms)", lambda a: _pair(a.get("create_to_job"))),
    ("last pod done -> final status p50 / p99 (ms)", lambda a: _pair(a.get("last_pod_to_status"))),
    ("API requests per evaluation, all clients", lambda a: a.get("api", {}).get("total_per_eval")),
    ("  by the arm's own client (bench in A0)", lambda a: _own(a)),
    ("  writes by it per evaluation", lambda a: controller_writes(a, besides_jobs=False)),
    ("  writes by it besides creating Jobs", lambda a: controller_writes(a, besides_jobs=True)),
    ("controller CPU (s)", lambda a: a.get("controller", {}).get("cpu_s")),
    ("controller peak RSS (MiB)", lambda a: a.get("controller", {}).get("peak_rss_mib")),
    (
        "reconciles per evaluation (evaluation / pool)",
        lambda a: _pair_of(a.get("controller_counts_per_eval"), "reconciles_evaluation", "reconciles_pool"),
    ),
    ("control plane CPU (s)", lambda a: round(sum(a.get("control_plane_cpu_s", {}).values()), 1) or None),
    ("live suspended evaluations", lambda a: a.get("live", {}).get("settled")),
    ("  controller RSS with them (MiB)", lambda a: a.get("live", {}).get("rss_mib")),
    ("  controller CPU to take them in (s)", lambda a: a.get("live", {}).get("cpu_s")),
    (
        "  controller writes per live evaluation",
        lambda a: a.get("live", {}).get("controller_writes_per_live_evaluation"),
    ),
]


def _pair_of(d: dict[str, Any] | None, first: str, second: str) -> str | None:
    if not d or first not in d:
        return None
    return f"{d[first]} / {d.get(second, '-')}"


def _pair(d: dict[str, Any] | None) -> str:
    return "-" if not d else f"{_cell(d.get('p50_ms'))} / {_cell(d.get('p99_ms'))}"


def _own(a: dict[str, Any]) -> Any:
    clients = a.get("api", {}).get("by_client_per_eval", {})
    return clients.get("bench" if a["arm"] == "A0" else "controller")


def ratios(arms: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    def pick(key: str, a: dict[str, Any]) -> float | None:
        value: Any = {
            "total_s": a.get("total_s"),
            "create_to_job_p99_ms": (a.get("create_to_job") or {}).get("p99_ms"),
            "last_pod_to_status_p99_ms": (a.get("last_pod_to_status") or {}).get("p99_ms"),
            "api_requests_per_eval": a.get("api", {}).get("total_per_eval"),
        }.get(key)
        return None if value is None else float(value)

    out: dict[str, dict[str, float | None]] = {}
    a2 = arms.get("A2")
    for base in ("A0", "A1"):
        if a2 is None or base not in arms:
            continue
        keys = ("total_s", "create_to_job_p99_ms", "last_pod_to_status_p99_ms", "api_requests_per_eval")
        out[f"A2/{base}"] = {k: ratio(pick(k, a2), pick(k, arms[base])) for k in keys}
    return out


def goals(arms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 9's goals for Assay (A2), each with the figure measured and whether it is met."""
    a2 = arms.get("A2")
    if not a2 or a2.get("error"):
        return []
    r = ratios(arms)

    def row(goal: str, value: Any, limit: float) -> dict[str, Any]:
        return {"goal": goal, "measured": value, "met": None if value is None else value <= limit}

    live = a2.get("live", {})
    return [
        row("total time <= 1.10 x A0", r.get("A2/A0", {}).get("total_s"), 1.10),
        row("total time <= 1.0 x A1", r.get("A2/A1", {}).get("total_s"), 1.0),
        row("create -> Job p99 <= 300 ms", (a2.get("create_to_job") or {}).get("p99_ms"), 300),
        row("<= 3 writes per evaluation besides the Jobs", controller_writes(a2, besides_jobs=True), 3),
        row(
            f"RSS <= 150 MiB with {live.get('settled', 0)} live evaluations (5,000 in tiers S/M)",
            live.get("rss_mib"),
            150,
        ),
    ]


def markdown(result: dict[str, Any]) -> str:
    arms = result["arms"]
    keys = list(arms)
    lines = [
        f"# Benchmark {result['date']}, tier {result['tier']['name']}",
        "",
        f"{result['tier']['evaluations']} evaluations x {result['tier']['tasks']} predict tasks "
        f"+ 1 evaluate step, {result['tier']['nodes']} fake nodes x "
        f"{result['tier'].get('gpus_per_node', 8)} GPUs, "
        f"pods finish {result['pod_ms']} ms after they run.",
        "",
        "| figure | " + " | ".join(f"{k}: {arms[k]['title']}" for k in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for label, fn in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(_safe(fn, arms[k])) for k in keys) + " |")
    lines += _ratio_table(result.get("ratios"))
    lines += _goal_table(goals(arms))
    for k in keys:
        lines += _api_section(k, arms[k])
    for k in keys:
        lines += _profile_section(k, arms[k])
    m = result["machine"]
    lines += [
        "",
        "## Machine and versions",
        "",
        f"- {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_gib']} GiB, kernel {m['kernel']}, "
        f"Python {m['python']}; load average at start {' '.join(m['loadavg_at_start'])}",
        "- " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
    ]
    if result.get("note"):
        lines += ["", f"Note: {result['note']}"]
    baseline = result.get("baseline")
    if baseline:
        lines += [
            "",
            f"Arms {', '.join(baseline['arms'])} come from an earlier run of the same tier on this machine "
            f"(started {baseline['started_at']}, load average at start "
            f"{' '.join(baseline.get('loadavg_at_start') or [])}; {baseline['source']}), not from this run. "
            + (f"Its note: {baseline['note']}" if baseline.get("note") else ""),
        ]
    return "\n".join(lines) + "\n"


def _ratio_table(ratios: dict[str, Any] | None) -> list[str]:
    if not ratios:
        return []
    lines = ["", "| ratio | total time | create->Job p99 | last pod->status p99 | API requests/eval |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name, r in ratios.items():
        lines.append(
            f"| {name} | {_cell(r['total_s'])} | {_cell(r['create_to_job_p99_ms'])} | "
            f"{_cell(r['last_pod_to_status_p99_ms'])} | {_cell(r['api_requests_per_eval'])} |"
        )
    return lines


def _goal_table(goal_rows: list[dict[str, Any]]) -> list[str]:
    if not goal_rows:
        return []
    lines = ["", "| goal (issue 9) | Assay measured | met |", "|---|---|---|"]
    for g in goal_rows:
        met = "-" if g["met"] is None else ("yes" if g["met"] else "no")
        lines.append(f"| {g['goal']} | {_cell(g['measured'])} | {met} |")
    return lines


def _api_section(k: str, arm: dict[str, Any]) -> list[str]:
    """The arm's apiserver requests per evaluation, by verb and resource (from the audit log)."""
    api = arm.get("api")
    if not api:
        return []
    own = "bench" if k == "A0" else "controller"
    lines = ["", f"## {k}: requests per evaluation by verb and resource ({own})", ""]
    lines += ["| verb resource | per evaluation |", "|---|---|"]
    rows = [r for r in api["raw"] if r["client"] == own]
    for r in sorted(rows, key=lambda r: -r["count"]):
        lines.append(f"| {r['verb']} {r['resource']} | {round(r['count'] / arm['evaluations'], 3)} |")
    if api.get("controller_user_agents"):
        lines.append(f"\nController User-Agents: {', '.join(api['controller_user_agents'])}")
    if api.get("audit_events_lost"):
        lines.append(
            f"\nThe apiserver could not write {int(api['audit_events_lost'])} audit events in this arm: "
            "its request counts are lower bounds."
        )
    return lines


def _profile_section(k: str, arm: dict[str, Any]) -> list[str]:
    """Where the arm's controller spent its CPU (py-spy): self and inclusive, and the top callers."""
    prof = arm.get("profile")
    if not prof or "self" not in prof:
        return []
    lines = ["", f"## {k}: where the controller's CPU went (py-spy, {prof['samples']} samples)", ""]
    lines += ["| self % | function | | inclusive % | function |", "|---|---|---|---|---|"]
    for mine, incl in zip(prof["self"], prof["inclusive"], strict=False):
        lines.append(
            f"| {mine['percent']} | `{mine['function']}` | | {incl['percent']} | `{incl['function']}` |"
        )
    lines += ["", "Called from (innermost first):", ""]
    for leaf, vias in prof.get("callers_of_top_self", {}).items():
        for via in vias:
            lines.append(f"- {via['percent']}% `{leaf}` < `{via['via']}`")
    return lines


def _safe(fn: Any, arm: dict[str, Any]) -> Any:
    if arm.get("error"):
        return "error"
    try:
        return fn(arm)
    except (KeyError, TypeError):
        return None


def add_baseline(result: dict[str, Any], earlier: dict[str, Any], source: str) -> None:
    """Report the arms of an earlier run of the same tier that this run did not run (marked as such)."""
    shape = ("name", "evaluations", "tasks", "nodes", "gpus_per_node")
    same_tier = all(earlier.get("tier", {}).get(k) == result["tier"].get(k) for k in shape)
    if not same_tier or earlier.get("pod_ms") != result["pod_ms"]:
        raise ValueError(f"{source} is another tier or pod duration than this run")
    found: dict[str, Any] = earlier.get("arms", {})
    taken = [k for k, arm in found.items() if k not in result["arms"] and "error" not in arm]
    arms = {k: found[k] for k in taken}
    result["arms"] = {**arms, **result["arms"]}
    result["arms"] = {k: result["arms"][k] for k in sorted(result["arms"])}
    if taken:
        result["baseline"] = {
            "arms": taken,
            "source": source,
            "started_at": earlier.get("started_at"),
            "note": earlier.get("note", ""),
            "loadavg_at_start": earlier.get("machine", {}).get("loadavg_at_start"),
        }


def write(result: dict[str, Any], out_dir: Path, label: str = "") -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{result['date']}-{result['tier']['name']}" + (f"-{label}" if label else "")
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    md_path.write_text(markdown(result))
    return json_path, md_path
