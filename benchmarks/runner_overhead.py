"""Runner overhead: the runner against a plain Python loop calling the same handler on the same data.

    make bench-runner     # or: .venv/bin/python benchmarks/runner_overhead.py [--copies 20] [--rounds 7]

Both arms run in this process, alternating, on the digits example (trained into .assay/bench/ by the
example's train.py) with its test set repeated ``--copies`` times, at batch size 64:

* plain loop: read the JSON Lines file, call ``predict`` on batches of 64, call ``evaluate`` on the pairs;
* runner: :func:`assay.runner.main.run_task` with the environment a single-task pod gets (step ``all``):
  the same work plus what the runner adds — resolving locations, counting and sharding, storing predictions
  per batch, reading them back, progress lines, the report and the termination message.

The handler is loaded fresh in each round of both arms. The headline is the ratio of the median CPU time of
this process (the work each arm does, robust to other jobs on a shared machine); wall-clock medians and
minima are printed too. The goal is an overhead of at most 5 %.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assay.contract import Step, TaskEnvironment
from assay.runner.main import run_task

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".assay" / "bench" / "runner-overhead"  # git-ignored, and outside what the linters scan
HANDLER = "digits_handler:DigitsClassifier"
BATCH_SIZE = 64
GOAL = 0.05


def prepare(copies: int) -> tuple[Path, Path]:
    """Train the example (once) and write the repeated dataset; returns (model directory, dataset file)."""
    spec = importlib.util.spec_from_file_location("digits_train", REPO / "examples" / "digits" / "train.py")
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    model_dir, test_set = train.train(WORK)
    records = test_set.read_text().splitlines()
    dataset = WORK / f"digits-x{copies}.jsonl"
    with dataset.open("w") as file:
        for copy in range(copies):
            for number, line in enumerate(records):
                record = json.loads(line)
                record["id"] = copy * len(records) + number
                file.write(json.dumps(record, separators=(",", ":")) + "\n")
    return model_dir, dataset


def plain_loop(model_dir: Path, dataset: Path) -> dict[str, Any]:
    """What a user would write without Assay."""
    if str(model_dir) not in sys.path:
        sys.path.insert(0, str(model_dir))
    import digits_handler  # lives in the model directory, on sys.path since the line above

    handler = digits_handler.DigitsClassifier(model_dir=model_dir)
    with dataset.open() as file:
        records = [json.loads(line) for line in file if line.strip()]
    predictions: list[Any] = []
    for start in range(0, len(records), BATCH_SIZE):
        predictions.extend(handler.predict(records[start : start + BATCH_SIZE]))
    metrics: dict[str, Any] = handler.evaluate(zip(records, predictions, strict=True))
    return metrics


def runner(model_dir: Path, dataset: Path, scratch: Path) -> None:
    output = scratch / "output"
    shutil.rmtree(output, ignore_errors=True)  # every round starts from nothing, as a fresh task does
    env = TaskEnvironment(
        step=Step.ALL,
        model_uri=str(model_dir),
        handler=HANDLER,
        dataset_uri=str(dataset),
        output_uri=str(output),
        batch_size=BATCH_SIZE,
        termination_message_path=str(scratch / "termination-log"),
    ).to_env()
    code = run_task(env)
    if code != 0:
        raise SystemExit(
            f"the runner failed with exit code {code}: {(scratch / 'termination-log').read_text()}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20, help="times the 899-record test set is repeated")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per arm, alternating")
    args = parser.parse_args()
    logging.getLogger("assay.runner").setLevel(logging.WARNING)  # progress lines are not what we measure
    model_dir, dataset = prepare(args.copies)
    records = sum(1 for _ in dataset.open())
    wall: dict[str, list[float]] = {"plain": [], "runner": []}
    cpu: dict[str, list[float]] = {"plain": [], "runner": []}
    with tempfile.TemporaryDirectory(dir=WORK) as scratch:
        plain_loop(model_dir, dataset)  # warm-up: imports and file cache for both arms
        for round_number in range(args.rounds):
            for arm in ("plain", "runner") if round_number % 2 == 0 else ("runner", "plain"):
                started_wall, started_cpu = time.perf_counter(), time.process_time()
                if arm == "plain":
                    plain_loop(model_dir, dataset)
                else:
                    runner(model_dir, dataset, Path(scratch))
                wall[arm].append(time.perf_counter() - started_wall)
                cpu[arm].append(time.process_time() - started_cpu)
    print(f"runner overhead: {records} records, batch size {BATCH_SIZE}, {args.rounds} rounds per arm")
    print(f"  {'':12}{'CPU median':>12}{'wall median':>13}{'wall min':>10}")
    for arm in ("plain", "runner"):
        label = "plain loop" if arm == "plain" else "runner"
        row = (statistics.median(cpu[arm]), statistics.median(wall[arm]), min(wall[arm]))
        print(f"  {label:12}{row[0]:>11.3f}s{row[1]:>12.3f}s{row[2]:>9.3f}s")
    # CPU time is the headline: this process's own work, unaffected by other jobs sharing the machine.
    cpu_ratio = statistics.median(cpu["runner"]) / statistics.median(cpu["plain"])
    wall_ratio = min(wall["runner"]) / min(wall["plain"])
    verdict = "within" if cpu_ratio - 1 <= GOAL else "over"
    overhead = f"overhead {cpu_ratio - 1:+.1%}, {verdict} the goal {GOAL:.0%}"
    print(f"  ratio runner/plain: CPU {cpu_ratio:.3f} ({overhead}),")
    print(f"                      wall (best rounds) {wall_ratio:.3f} (overhead {wall_ratio - 1:+.1%})")


if __name__ == "__main__":
    main()
