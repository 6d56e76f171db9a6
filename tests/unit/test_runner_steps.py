"""The runner's steps in-process on a tiny pure-Python handler: single pass, resume, sharded evaluate."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from assay.contract import ExitCode
from assay.runner.datasets import open_dataset
from assay.runner.failures import TaskFailed
from assay.runner.handlers import Handler, load_handler
from assay.runner.predictions import PredictionWriter
from assay.runner.steps import evaluate_predictions, predict_and_evaluate, predict_shard

PARITY = """
calls = []

class Parity:
    def predict(self, batch):
        calls.extend(record["n"] for record in batch)
        return [record["n"] % 2 for record in batch]

    def evaluate(self, rows):
        pairs = list(rows)
        correct = sum(1 for record, prediction in pairs if record["odd"] == prediction)
        return {"accuracy": correct / len(pairs), "counts": {"records": len(pairs)}}
"""


@pytest.fixture
def parity(tmp_path: Path) -> tuple[Handler, list[int]]:
    module = f"parity_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(PARITY))
    handler = load_handler(tmp_path, f"{module}:Parity")
    return handler, __import__(module).calls


@pytest.fixture
def numbers(tmp_path: Path) -> Path:
    path = tmp_path / "numbers.jsonl"
    # Every 10th label is wrong, so accuracy is 0.9 and a mix-up of records and predictions would show.
    path.write_text("".join(json.dumps({"n": n, "odd": (n % 2) ^ (n % 10 == 0)}) + "\n" for n in range(100)))
    return path


def test_single_task_reads_once_and_resumes_after_stored_predictions(
    parity: tuple[Handler, list[int]], numbers: Path, tmp_path: Path
) -> None:
    handler, calls = parity
    with PredictionWriter(tmp_path / "out" / "predictions", 0, 1, 0, 100) as earlier:
        earlier.write_batch(0, [n % 2 for n in range(30)])  # what a killed first attempt left
    result = predict_and_evaluate(handler, open_dataset(numbers), tmp_path / "out", 16, {"evaluation": "t/x"})
    assert calls == list(range(30, 100))
    assert result.summary == {"accuracy": 0.9, "counts/records": 100}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["evaluation"] == "t/x" and report["summary"] == result.summary


def test_shards_then_evaluate_match_the_single_pass(
    parity: tuple[Handler, list[int]], numbers: Path, tmp_path: Path
) -> None:
    handler, _ = parity
    dataset = open_dataset(numbers)
    for index in range(3):
        predict_shard(handler, dataset, tmp_path, index, 3, batch_size=7)
    assert evaluate_predictions(handler, dataset, tmp_path, 3, {}).summary == {
        "accuracy": 0.9,
        "counts/records": 100,
    }


def test_a_prediction_that_is_not_json_fails_the_handler(numbers: Path, tmp_path: Path) -> None:
    module = f"bad_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "class Bad:\n    def predict(self, batch):\n        return [object() for _ in batch]\n"
        "    def evaluate(self, rows):\n        return {}\n"
    )
    with pytest.raises(TaskFailed, match="not a JSON value") as caught:
        predict_shard(load_handler(tmp_path, f"{module}:Bad"), open_dataset(numbers), tmp_path, 0, 1, 10)
    assert caught.value.code is ExitCode.HANDLER_FAILED


def test_a_csv_with_a_trailing_blank_line_runs_in_two_shards(
    parity: tuple[Handler, list[int]], tmp_path: Path
) -> None:
    handler, _ = parity
    path = tmp_path / "numbers.csv"
    path.write_text("n,odd\r\n" + "".join(f"{n},{n % 2}\r\n" for n in range(9)) + "\r\n")
    handler.target.evaluate = lambda rows: {"records": sum(1 for _ in rows)}  # CSV values are strings
    handler.target.predict = lambda batch: [int(record["n"]) % 2 for record in batch]
    dataset = open_dataset(path)
    for index in range(2):
        predict_shard(handler, dataset, tmp_path, index, 2, batch_size=4)
    assert evaluate_predictions(handler, dataset, tmp_path, 2, {}).summary == {"records": 9}
