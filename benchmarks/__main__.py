"""``python -m benchmarks``: run the arms interleaved, round after round, print the table, write the results.

.venv/bin/python -m benchmarks --tier S              # 3 rounds of A0, A1, A2 (what `make bench` runs)
.venv/bin/python -m benchmarks --tier smoke --arms A0,A1 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import time
import traceback
from collections.abc import Coroutine
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from . import report
from .arms import REPO_ROOT, Arm, make_arm
from .run import POD_MS, TIERS, Tier, cached_binary, live_memory, run_arm

log = logging.getLogger("bench")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="S")
    parser.add_argument(
        "--arms", default="A0,A1,A2", help="comma-separated: A0 raw Jobs, A1 JobSet, A2 Assay"
    )
    parser.add_argument(
        "--live-arms",
        default="A2",
        help="arms measured with the tier's live (suspended) evaluations for the memory figure, each once, "
        "after the rounds, on a fresh cluster and in a fresh controller process ('' for none)",
    )
    parser.add_argument(
        "--keep-cluster",
        action="store_true",
        help="leave the last arm's cluster running (.cluster/bench/kubeconfig)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the operator (A2) with py-spy during the run"
    )
    parser.add_argument("--live", type=int, default=None, help="live evaluations for the memory figure")

    parser.add_argument("--timeout", type=float, default=None, help="seconds for all evaluations to finish")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--note", default="", help="written into the results (e.g. what else ran meanwhile)")
    parser.add_argument(
        "--label", default="", help="added to the file names (<date>-<tier>-<label>), so a run keeps its own"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="run each arm this many times, interleaved A0, A1, A2, A0, ... (default: the tier's; smoke 1)",
    )
    parser.add_argument(
        "--rate",
        default=None,
        help="steady arrival rates, evaluations a second, comma-separated (default: the tier's; '' for none)",
    )
    parser.add_argument("--steady-s", type=float, default=None, help="seconds each steady rate lasts")
    parser.add_argument(
        "--jobset-dir", type=Path, default=None, help="built by hack/build-jobset.sh (default: the cache)"
    )
    return parser.parse_args(argv)


def tier_of(args: argparse.Namespace) -> Tier:
    """The tier named on the command line, with the settings the options override."""
    tier = TIERS[args.tier]
    if args.timeout:
        tier = replace(tier, timeout_s=args.timeout)
    if args.live is not None:
        tier = replace(tier, live=args.live)
    if args.rounds is not None:
        if args.rounds < 1:
            raise SystemExit("--rounds must be at least 1")
        tier = replace(tier, rounds=args.rounds)
    if args.rate is not None:
        tier = replace(tier, rates=tuple(float(r) for r in args.rate.split(",") if r.strip()))
    if args.steady_s is not None:
        tier = replace(tier, steady_s=args.steady_s)
    return tier


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tier = tier_of(args)
    keys = [k.strip() for k in args.arms.split(",") if k.strip()]
    live_keys = [k for k in args.live_arms.split(",") if k.strip()]
    jobset_dir = args.jobset_dir or cached_binary("jobset", "JOBSET_VERSION", "")
    work_root = REPO_ROOT / "benchmarks" / "tmp"
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tier": asdict(tier),
        "rounds": tier.rounds,
        "pod_ms": POD_MS,
        "machine": report.machine(),
        "versions": report.versions(),
        "note": args.note,
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    titles: dict[str, str] = {}
    last = (tier.rounds - 1, keys[-1]) if keys else None
    for round_index in range(tier.rounds):
        for key in keys:
            log.info("round %d of %d: %s", round_index + 1, tier.rounds, key)
            arm = make_arm(key, jobset_dir)  # a new one every round: A0 keeps state per run
            titles[key] = arm.title
            runs[key].append(
                await _attempt(
                    arm,
                    run_arm(
                        arm,
                        tier,
                        _work_dir(work_root, f"{key}-{round_index + 1}"),
                        keep=args.keep_cluster and (round_index, key) == last and not live_keys,
                        profile=args.profile and key == "A2",
                    ),
                )
            )
            # A tier M run takes hours: each arm's figures are on disk as soon as its run ends.
            report.write_partial(result, runs, titles, args.out, args.label)
    result["arms"] = {k: report.aggregate(k, titles[k], runs[k]) for k in keys}
    result["live"] = {}
    for key in live_keys:
        arm = make_arm(key, jobset_dir)
        if arm.live_supported:
            result["live"][key] = await _attempt(
                arm, live_memory(arm, tier, _work_dir(work_root, f"{key}-live"))
            )
    result["ratios"] = report.ratios(result["arms"])
    result["goals"] = report.goals(result["arms"], result["live"], result["tier"])
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return result


def _work_dir(root: Path, name: str) -> Path:
    work_dir = root / name
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    return work_dir


async def _attempt(arm: Arm, measurement: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """The measurement's figures, or the error: one run failing must not lose the others' figures."""
    try:
        return await measurement
    except Exception as exc:
        log.error("%s failed: %s", arm.key, exc)
        return {"arm": arm.key, "title": arm.title, "error": "".join(traceback.format_exception(exc))}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = asyncio.run(main_async(args))
    result["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    json_path, md_path = report.write(result, args.out, args.label)
    print(report.markdown(result))
    print(f"written: {json_path}, {md_path}")
    failed = [r for a in result["arms"].values() for r in a["runs"] if "error" in r]
    failed += [m for m in result["live"].values() if "error" in m]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
