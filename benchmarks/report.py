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
from .stats import ratio, spread

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


def controller_writes(run: dict[str, Any], *, besides_jobs: bool) -> float | None:
    """Writes per evaluation by the arm's own client in one run: the controller (A1, A2) or the bench (A0)."""
    api = run.get("api")
    if not api:
        return None
    client = "bench" if run["arm"] == "A0" else "controller"
    total: int = 0
    for row in api["raw"]:
        if row["client"] != client or row["verb"] not in WRITE_VERBS:
            continue
        if besides_jobs and row["verb"] == "create" and row["resource"] == "jobs.batch":
            continue
        total += int(row["count"])
    return round(total / max(int(run["evaluations"]), 1), 2)


def _p(d: dict[str, Any] | None, key: str) -> Any:
    return None if not d else d.get(key)


def _latencies(prefix: str, phase: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{prefix}create_to_job_p50_ms": _p(phase.get("create_to_job"), "p50_ms"),
        f"{prefix}create_to_job_p99_ms": _p(phase.get("create_to_job"), "p99_ms"),
        f"{prefix}last_pod_to_status_p50_ms": _p(phase.get("last_pod_to_status"), "p50_ms"),
        f"{prefix}last_pod_to_status_p99_ms": _p(phase.get("last_pod_to_status"), "p99_ms"),
        f"{prefix}all_in_cpu_per_eval_s": phase.get("all_in_cpu_per_eval_s"),
    }


def run_figures(run: dict[str, Any]) -> dict[str, float]:
    """Every figure of one run of an arm, flat and numeric (``steady_<rate>_...`` for the steady phases)."""
    api = run.get("api", {})
    clients = api.get("by_client_per_eval", {})
    counts = run.get("controller_counts_per_eval") or {}
    figures: dict[str, Any] = {
        "total_s": run.get("total_s"),
        "control_plane_cpu_s": round(sum(run.get("control_plane_cpu_s", {}).values()), 2),
        "controller_cpu_s": run.get("controller", {}).get("cpu_s"),
        "create_request_p50_ms": _p(run.get("create_request"), "p50_ms"),
        "create_request_p99_ms": _p(run.get("create_request"), "p99_ms"),
        **_latencies("", run),
        "api_requests_per_eval": api.get("total_per_eval"),
        "own_requests_per_eval": clients.get("bench" if run["arm"] == "A0" else "controller"),
        "writes_per_eval": controller_writes(run, besides_jobs=False),
        "writes_besides_jobs_per_eval": controller_writes(run, besides_jobs=True),
        "controller_peak_rss_mib": run.get("controller", {}).get("peak_rss_mib"),
        "reconciles_evaluation_per_eval": counts.get("reconciles_evaluation"),
        "reconciles_pool_per_eval": counts.get("reconciles_pool"),
    }
    for command, wall in (run.get("cli_wall_s") or {}).items():
        figures[f"cli_{command.replace(' ', '_')}_s"] = wall
    for command, cpu in (run.get("cli_cpu_s") or {}).items():
        figures[f"cli_{command.replace(' ', '_')}_cpu_s"] = cpu
    for rate, phase in (run.get("steady") or {}).items():
        figures.update(_latencies(f"steady_{rate}_", phase))
    return {k: float(v) for k, v in figures.items() if isinstance(v, int | float)}


def aggregate(key: str, title: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One arm over its rounds: the runs as measured, and each figure's median and min-max over the runs
    that did not fail."""
    done = [r for r in runs if "error" not in r]
    per_run = [run_figures(r) for r in done]
    names = sorted({name for figures in per_run for name in figures})
    spreads = {name: spread([f[name] for f in per_run if name in f]) for name in names}
    return {"arm": key, "title": title, "runs": runs, "figures": spreads}


def median_of(arm: dict[str, Any], figure: str) -> float | None:
    s: dict[str, Any] | None = arm.get("figures", {}).get(figure)
    return None if not s else float(s["median"])


RATIO_FIGURES = (
    ("total_s", "total time"),
    ("all_in_cpu_per_eval_s", "all-in CPU/eval"),
    ("create_to_job_p99_ms", "create->Job p99"),
    ("last_pod_to_status_p99_ms", "last pod->status p99"),
    ("api_requests_per_eval", "API requests/eval"),
)


def ratios(arms: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """A2 against A0 and A1, from the medians over the rounds."""
    out: dict[str, dict[str, float | None]] = {}
    a2 = arms.get("A2")
    for base in ("A0", "A1"):
        if a2 is None or base not in arms:
            continue
        out[f"A2/{base}"] = {
            k: ratio(median_of(a2, k), median_of(arms[base], k)) for k, _label in RATIO_FIGURES
        }
    return out


def goals(
    arms: dict[str, dict[str, Any]], live: dict[str, dict[str, Any]], tier: dict[str, Any]
) -> list[dict[str, Any]]:
    """Issue 23's goals for Assay (A2), each with the figure measured (medians over the rounds) and whether
    it is met."""
    a2 = arms.get("A2")
    if not a2 or not a2.get("figures"):
        return []
    r = ratios(arms)

    def row(goal: str, value: Any, limit: float) -> dict[str, Any]:
        return {"goal": goal, "measured": value, "met": None if value is None else value <= limit}

    figures = a2["figures"]
    peak = figures.get("controller_peak_rss_mib")
    memory = live.get("A2", {})
    rows = [
        row("all-in CPU per evaluation <= 1.0 x A1", r.get("A2/A1", {}).get("all_in_cpu_per_eval_s"), 1.0),
        row("all-in CPU per evaluation <= 1.3 x A0", r.get("A2/A0", {}).get("all_in_cpu_per_eval_s"), 1.3),
        row(
            f"total time, median of {tier.get('rounds')}, <= 1.0 x A1", r.get("A2/A1", {}).get("total_s"), 1.0
        ),
    ]
    for rate in tier.get("rates", ()):
        rows += [
            row(f"steady {rate:g}/s: create -> Job p99 <= 300 ms",
                median_of(a2, f"steady_{rate:g}_create_to_job_p99_ms"), 300),
            row(f"steady {rate:g}/s: last pod -> final status p99 <= 1,000 ms",
                median_of(a2, f"steady_{rate:g}_last_pod_to_status_p99_ms"), 1000),
        ]  # fmt: skip
    rows += [
        row("writes per evaluation besides the Jobs <= 2.5",
            median_of(a2, "writes_besides_jobs_per_eval"), 2.5),
        row(f"RSS with {memory.get('settled', 0)} live Evaluations, fresh process, <= 150 MiB (5,000 in S/M)",
            memory.get("rss_mib"), 150),
        row("growth per live Evaluation <= 10 KiB", memory.get("growth_kib_per_evaluation"), 10),
        row("peak RSS during the tier (the highest round) <= 300 MiB (goal for tier M)",
            None if not peak else peak["max"], 300),
        row(f"`assay list -A` wall time with {tier.get('evaluations')} Evaluations <= 0.5 s (200 in S)",
            median_of(a2, "cli_assay_list_-A_s"), 0.5),
        row(f"`assay get` wall time with {tier.get('evaluations')} Evaluations <= 0.5 s",
            median_of(a2, "cli_assay_get_s"), 0.5),
    ]  # fmt: skip
    return rows


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _num(value: float) -> str:
    """Three significant digits, whole numbers from 100 on (ms latencies): 7.07, 14.7, 1,357."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _spread_cell(s: dict[str, Any] | None) -> str:
    """``median (min-max)``, or the one value of a single round."""
    if not s:
        return "-"
    if s["n"] == 1 or _num(s["min"]) == _num(s["max"]):
        return _num(s["median"])
    return f"{_num(s['median'])} ({_num(s['min'])}-{_num(s['max'])})"


BURST_ROWS: list[tuple[str, str]] = [
    ("total time, first create -> last finished (s)", "total_s"),
    (
        "**all-in CPU per evaluation (s)**: (control plane + controller) / evaluations",
        "all_in_cpu_per_eval_s",
    ),
    ("  control plane CPU (s)", "control_plane_cpu_s"),
    ("  controller CPU (s)", "controller_cpu_s"),
    ("create request (with webhooks) p50 (ms)", "create_request_p50_ms"),
    ("create request (with webhooks) p99 (ms)", "create_request_p99_ms"),
    ("create -> Job created p50 (ms)", "create_to_job_p50_ms"),
    ("create -> Job created p99 (ms)", "create_to_job_p99_ms"),
    ("last pod done -> final status p50 (ms)", "last_pod_to_status_p50_ms"),
    ("last pod done -> final status p99 (ms)", "last_pod_to_status_p99_ms"),
    ("API requests per evaluation, all clients", "api_requests_per_eval"),
    ("  by the arm's own client (bench in A0)", "own_requests_per_eval"),
    ("  writes by it per evaluation", "writes_per_eval"),
    ("  writes by it besides creating Jobs", "writes_besides_jobs_per_eval"),
    ("controller peak RSS during the run (MiB)", "controller_peak_rss_mib"),
    ("reconciles per evaluation: evaluation", "reconciles_evaluation_per_eval"),
    ("reconciles per evaluation: pool", "reconciles_pool_per_eval"),
    ("`assay list -A` wall time after the burst (s)", "cli_assay_list_-A_s"),
    ("`assay get` wall time after the burst (s)", "cli_assay_get_s"),
    ("  its CPU time: `assay list -A` (s)", "cli_assay_list_-A_cpu_s"),
    ("  its CPU time: `assay get` (s)", "cli_assay_get_cpu_s"),
    ("  `kubectl get evaluations -A` wall time then (s)", "cli_kubectl_get_evaluations_-A_s"),
]


def _finished(arm: dict[str, Any]) -> str:
    runs = [r for r in arm["runs"] if "error" not in r]
    failed = len(arm["runs"]) - len(runs)
    done = f"{sum(r.get('finished', 0) for r in runs)}/{sum(r.get('evaluations', 0) for r in runs)}"
    outcomes: dict[str, int] = {}
    for r in runs:
        for k, v in r.get("outcomes", {}).items():
            outcomes[k] = outcomes.get(k, 0) + v
    text = done + " (" + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) + ")"
    return text + (f"; {failed} round(s) failed" if failed else "")


def _header(arms: dict[str, dict[str, Any]]) -> list[str]:
    return ["| figure | " + " | ".join(f"{k}: {a['title']}" for k, a in arms.items()) + " |",
            "|---|" + "---|" * len(arms)]  # fmt: skip


def _rows(arms: dict[str, dict[str, Any]], rows: list[tuple[str, str]]) -> list[str]:
    """One line per figure that some arm measured: each arm's median (min-max)."""
    lines = []
    for label, figure in rows:
        cells = [_spread_cell(arm["figures"].get(figure)) for arm in arms.values()]
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    arms: dict[str, dict[str, Any]] = result["arms"]
    tier = result["tier"]
    rounds = result.get("rounds", 1)
    lines = [
        f"# Benchmark {result['date']}, tier {tier['name']}",
        "",
        f"{tier['evaluations']} evaluations x {tier['tasks']} predict tasks + 1 evaluate step, "
        f"{tier['nodes']} fake nodes x {tier.get('gpus_per_node', 8)} GPUs, "
        f"pods finish {result['pod_ms']} ms after they run. {rounds} round(s), the arms interleaved "
        f"({', '.join(arms)}, then again), each run on a fresh cluster: every cell is the median over the "
        "rounds, the min-max in brackets; ratios are of the medians.",
        "",
        "## Burst: every evaluation created at once",
        "",
        *_header(arms),
        "| evaluations finished, all rounds | " + " | ".join(_finished(a) for a in arms.values()) + " |",
        *_rows(arms, BURST_ROWS),
    ]
    lines += _ratio_table(result.get("ratios"))
    lines += _steady_section(arms, tier)
    lines += _live_section(result.get("live") or {})
    lines += _goal_table(result.get("goals") or [])
    lines += _rounds_section(arms)
    for k, arm in arms.items():
        run = median_run(arm)
        if run is not None:
            lines += _api_section(k, run)
    for k, arm in arms.items():
        profiled = next((r for r in arm["runs"] if r.get("profile")), None)
        if profiled is not None:
            lines += _profile_section(k, profiled)
    m = result["machine"]
    lines += [
        "",
        "## Machine and versions",
        "",
        f"- {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_gib']} GiB, kernel {m['kernel']}, "
        f"Python {m['python']}; load average at start {' '.join(m['loadavg_at_start'])}"
        + (f", at end {' '.join(m['loadavg_at_end'])}" if m.get("loadavg_at_end") else ""),
        "- " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
    ]
    if result.get("note"):
        lines += ["", f"Note: {result['note']}"]
    return "\n".join(lines) + "\n"


def median_run(arm: dict[str, Any]) -> dict[str, Any] | None:
    """The run whose total time is nearest the median: its requests by verb and resource are shown."""
    runs: list[dict[str, Any]] = [r for r in arm["runs"] if "error" not in r and r.get("total_s") is not None]
    if not runs:
        return None
    middle = median_of(arm, "total_s") or 0.0
    return min(runs, key=lambda r: abs(float(r["total_s"]) - middle))


def _ratio_table(ratios: dict[str, Any] | None) -> list[str]:
    if not ratios:
        return []
    lines = ["", "| ratio of medians | " + " | ".join(label for _k, label in RATIO_FIGURES) + " |",
             "|---|" + "---|" * len(RATIO_FIGURES)]  # fmt: skip
    for name, r in ratios.items():
        lines.append(f"| {name} | " + " | ".join(_cell(r.get(k)) for k, _label in RATIO_FIGURES) + " |")
    return lines


def _steady_section(arms: dict[str, dict[str, Any]], tier: dict[str, Any]) -> list[str]:
    rates = tier.get("rates") or ()
    if not rates:
        return []
    rows: list[tuple[str, str]] = []
    for rate in rates:
        p = f"steady_{rate:g}_"
        rows += [
            (f"{rate:g}/s: create -> Job created p50 (ms)", p + "create_to_job_p50_ms"),
            (f"{rate:g}/s: create -> Job created p99 (ms)", p + "create_to_job_p99_ms"),
            (f"{rate:g}/s: last pod done -> final status p50 (ms)", p + "last_pod_to_status_p50_ms"),
            (f"{rate:g}/s: last pod done -> final status p99 (ms)", p + "last_pod_to_status_p99_ms"),
            (f"{rate:g}/s: all-in CPU per evaluation (s)", p + "all_in_cpu_per_eval_s"),
        ]
    return [
        "",
        f"## Steady arrivals: created one by one at a fixed rate for {tier.get('steady_s', 0):g} s",
        "",
        "After the burst, on the same cluster (each rate in a namespace of its own).",
        "",
        *_header(arms),
        *_rows(arms, rows),
    ]


def _live_section(live: dict[str, dict[str, Any]]) -> list[str]:
    if not live:
        return []
    lines = ["", "## Memory with live (suspended) evaluations, fresh cluster and controller process", "",
             "| arm | RSS at 0 / half / all (MiB) | growth per live evaluation, second half (KiB) | "
             "CPU to take them in (s) | writes per live evaluation | settled |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for k, m in live.items():
        if "error" in m:
            lines.append(f"| {k} | error | | | | |")
            continue
        at = " / ".join(_cell(v) for v in m.get("rss_mib_at", {}).values())
        lines.append(
            f"| {k} | {at} | {_cell(m.get('growth_kib_per_evaluation'))} | {_cell(m.get('cpu_s'))} | "
            f"{_cell(m.get('controller_writes_per_live_evaluation'))} | "
            f"{m.get('settled')}/{m.get('live_evaluations')} |"
        )
    return lines


def _goal_table(goal_rows: list[dict[str, Any]]) -> list[str]:
    if not goal_rows:
        return []
    lines = ["", "## Goals (issue 23)", "", "| goal | Assay measured | met |", "|---|---|---|"]
    for g in goal_rows:
        met = "-" if g["met"] is None else ("yes" if g["met"] else "no")
        measured = _num(g["measured"]) if isinstance(g["measured"], int | float) else _cell(g["measured"])
        lines.append(f"| {g['goal']} | {measured} | {met} |")
    return lines


def _rounds_section(arms: dict[str, dict[str, Any]]) -> list[str]:
    """Every run in the order they ran: total time, all-in CPU per evaluation, load average at its start."""
    lines = ["", "## Rounds, in the order they ran", "",
             "| round | arm | total time (s) | all-in CPU/eval (s) | load average at start |",
             "|---|---|---|---|---|"]  # fmt: skip
    rounds = max((len(arm["runs"]) for arm in arms.values()), default=0)
    for i in range(1, rounds + 1):
        for k, arm in arms.items():
            if i > len(arm["runs"]):
                continue
            run = arm["runs"][i - 1]
            if "error" in run:
                lines.append(f"| {i} | {k} | error: {run['error'].strip().splitlines()[-1]} | | |")
                continue
            load = " ".join(run.get("loadavg_at_start") or [])
            cpu = _cell(run.get("all_in_cpu_per_eval_s"))
            lines.append(f"| {i} | {k} | {_cell(run.get('total_s'))} | {cpu} | {load} |")
    return lines


def _api_section(k: str, arm: dict[str, Any]) -> list[str]:
    """The apiserver requests per evaluation of one run of the arm, by verb and resource (audit log)."""
    api = arm.get("api")
    if not api:
        return []
    own = "bench" if k == "A0" else "controller"
    lines = ["", f"## {k}: requests per evaluation by verb and resource ({own}; the median round)", ""]
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


def _stem(result: dict[str, Any], label: str) -> str:
    return f"{result['date']}-{result['tier']['name']}" + (f"-{label}" if label else "")


def write(result: dict[str, Any], out_dir: Path, label: str = "") -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _stem(result, label)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    _write_json(json_path, result)
    md_path.write_text(markdown(result))
    (out_dir / f"{stem}.partial.json").unlink(missing_ok=True)
    return json_path, md_path


def write_partial(
    result: dict[str, Any],
    runs: dict[str, list[dict[str, Any]]],
    titles: dict[str, str],
    out_dir: Path,
    label: str = "",
) -> Path:
    """The runs so far, aggregated, as <stem>.partial.json: what an interrupted run leaves (write() removes
    it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = dict(result, arms={k: aggregate(k, titles[k], r) for k, r in runs.items() if r})
    path = out_dir / f"{_stem(result, label)}.partial.json"
    _write_json(path, partial)
    return path


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
