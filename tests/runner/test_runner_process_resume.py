"""A predict task killed mid-shard and rerun resumes after its written predictions, and the summary holds."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assay.contract import Step

from .conftest import Digits, Finished, start_runner, task_env

pytestmark = pytest.mark.timeout(300)

# Wraps the example's handler: writes the ids of every batch it is given, and can be slowed down so the
# test can kill it in the middle of its shard.
COUNTING_HANDLER = """
import os
import time

from digits_handler import DigitsClassifier


class CountingClassifier(DigitsClassifier):
    def predict(self, batch):
        with open(os.environ["COUNT_FILE"], "a") as file:
            file.write(" ".join(str(record["id"]) for record in batch) + "\\n")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        return super().predict(batch)
"""


def _predicted_ids(count_file: Path) -> list[int]:
    return [int(i) for line in count_file.read_text().splitlines() for i in line.split()]


def test_killed_predict_task_resumes_after_its_written_records(
    digits: Digits, tmp_path: Path, run_runner: Callable[..., Finished]
) -> None:
    model = tmp_path / "model"
    shutil.copytree(digits.model, model)
    (model / "v1" / "counting_handler.py").write_text(COUNTING_HANDLER)
    shard = {"step": Step.PREDICT, "task_index": 1, "task_count": 2, "batch_size": 16}
    env = task_env(
        digits, tmp_path, model_uri=str(model), handler="counting_handler:CountingClassifier", **shard
    )
    predictions = tmp_path / "output" / "predictions" / "shard-00001-of-00002.jsonl"
    start = 450  # shard 1 of 2 over 899 records: 450..898

    first = start_runner(
        {**env, "COUNT_FILE": str(tmp_path / "first.ids"), "SLOW_SECONDS": "0.1"}, tmp_path / "1.log"
    )
    deadline = time.monotonic() + 120
    while not predictions.exists() or predictions.read_text().count("\n") < 5 * 16:
        assert first.poll() is None, (tmp_path / "1.log").read_text()
        assert time.monotonic() < deadline, "the first attempt wrote no predictions"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # what an evicted or OOM-killed pod gets
    first.wait()
    written = predictions.read_text().count("\n")
    assert 5 * 16 <= written < 449

    second = run_runner({**env, "COUNT_FILE": str(tmp_path / "second.ids")}, name="second")
    assert second.code == 0, second.log
    assert f"resumed from {written} records already written" in second.log
    redone = _predicted_ids(tmp_path / "second.ids")
    assert redone == list(range(start + written, 899)), "the rerun must start right after the written records"
    assert set(_predicted_ids(tmp_path / "first.ids")[:written]) == set(range(start, start + written))

    lines = predictions.read_text().splitlines()
    assert len(lines) == 449

    # The other shard and the evaluate step: the same summary as an uninterrupted single task.
    other = run_runner(
        task_env(digits, tmp_path, step=Step.PREDICT, task_index=0, task_count=2), name="shard0"
    )
    assert other.code == 0, other.log
    evaluated = run_runner(task_env(digits, tmp_path, step=Step.EVALUATE, task_count=2), name="evaluate")
    reference = run_runner(task_env(digits, tmp_path / "reference"), name="reference")
    assert evaluated.code == 0 and reference.code == 0, evaluated.log + reference.log
    assert evaluated.summary == reference.summary


def test_a_finished_shard_rerun_predicts_nothing(
    digits: Digits, tmp_path: Path, run_runner: Callable[..., Finished]
) -> None:
    model = tmp_path / "model"
    shutil.copytree(digits.model, model)
    (model / "v1" / "counting_handler.py").write_text(COUNTING_HANDLER)
    env = task_env(
        digits,
        tmp_path,
        model_uri=str(model),
        handler="counting_handler:CountingClassifier",
        step=Step.PREDICT,
        task_index=0,
        task_count=3,
    )
    assert run_runner({**env, "COUNT_FILE": str(tmp_path / "first.ids")}).code == 0
    again = run_runner({**env, "COUNT_FILE": str(tmp_path / "second.ids")})
    assert again.code == 0, again.log
    assert "resumed from 300 records" in again.log
    assert not (tmp_path / "second.ids").exists()
