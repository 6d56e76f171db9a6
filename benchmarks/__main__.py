"""``python -m benchmarks``: run the arms one after another, print the table, write the results.

.venv/bin/python -m benchmarks --tier S              # A0, A1, A2 (what `make bench` runs)
.venv/bin/python -m benchmarks --tier smoke --arms A0,A1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from . import report
from .arms import REPO_ROOT, make_arm
from .run import POD_MS, TIERS, cached_binary, run_arm

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
        help="arms measured with the tier's live (suspended) evaluations for the memory figure ('' for none)",
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
        "--baseline",
        type=Path,
        default=None,
        help="an earlier results JSON of the same tier: its arms that this run does not run are reported "
        "beside this run's (marked as such), e.g. to rerun only A2 after a change",
    )
    parser.add_argument(
        "--jobset-dir", type=Path, default=None, help="built by hack/build-jobset.sh (default: the cache)"
    )
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tier = TIERS[args.tier]
    if args.timeout:
        tier = replace(tier, timeout_s=args.timeout)
    if args.live is not None:
        tier = replace(tier, live=args.live)
    started = time.strftime("%Y-%m-%d")
    work_root = REPO_ROOT / "benchmarks" / "tmp"
    result: dict[str, Any] = {
        "date": started,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tier": asdict(tier),
        "pod_ms": POD_MS,
        "machine": report.machine(),
        "versions": report.versions(),
        "note": args.note,
        "arms": {},
    }
    for key in [k.strip() for k in args.arms.split(",") if k.strip()]:
        arm = make_arm(key, args.jobset_dir or cached_binary("jobset", "JOBSET_VERSION", ""))
        work_dir = work_root / key
        shutil.rmtree(work_dir, ignore_errors=True)
        os.makedirs(work_dir)
        try:
            result["arms"][key] = await run_arm(
                arm,
                tier,
                work_dir,
                live=key in args.live_arms.split(","),
                keep=args.keep_cluster,
                profile=args.profile and key == "A2",
            )
        except Exception as exc:  # one arm failing must not lose the others' figures
            log.error("%s failed: %s", key, exc)
            result["arms"][key] = {
                "arm": key,
                "title": arm.title,
                "error": "".join(traceback.format_exception(exc)),
            }
    if args.baseline is not None:
        report.add_baseline(result, json.loads(args.baseline.read_text()), str(args.baseline))
    result["ratios"] = report.ratios({k: v for k, v in result["arms"].items() if "error" not in v})
    result["goals"] = report.goals(result["arms"])
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = asyncio.run(main_async(args))
    result["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    json_path, md_path = report.write(result, args.out, args.label)
    print(report.markdown(result))
    print(f"written: {json_path}, {md_path}")
    return 1 if any("error" in a for a in result["arms"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
