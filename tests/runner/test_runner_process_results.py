"""The runner as pods run it: shards + evaluate, one task, --local and plain sklearn agree."""

from __future__ import annotations

import hashlib
import http.server
import json
import pickle
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from assay.cli.run import run as run_command
from assay.contract import Step

from .conftest import HANDLER, Digits, Finished, finish, start_runner, task_env

pytestmark = pytest.mark.timeout(300)


def sklearn_metrics(digits: Digits) -> dict[str, float]:
    """Accuracy and macro F1 computed without Assay: the pickled model on the exported records."""
    from sklearn.metrics import accuracy_score, f1_score

    with open(digits.model / "v1" / "classifier.pkl", "rb") as file:
        model = pickle.load(file)
    records = [json.loads(line) for line in digits.dataset_file.read_text().splitlines()]
    predicted = model.predict([r["pixels"] for r in records])
    labels = [r["label"] for r in records]
    return {
        "accuracy": accuracy_score(labels, predicted),
        "macro f1": f1_score(labels, predicted, average="macro"),
    }


@pytest.fixture(scope="module")
def one_task_summary(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("one-task")
    env = task_env(digits, work)
    finished = finish(start_runner(env, work / "task.log"), env, work / "task.log")
    assert finished.code == 0, finished.log
    return finished.summary


def test_four_shards_then_evaluate_equal_one_task_and_sklearn(
    digits: Digits, tmp_path: Path, one_task_summary: dict[str, object], run_runner: Callable[..., Finished]
) -> None:
    predict_envs = [
        task_env(
            digits,
            tmp_path,
            step=Step.PREDICT,
            task_index=i,
            task_count=4,
            termination_message_path=str(tmp_path / f"predict-{i}.termination-log"),
        )
        for i in range(4)
    ]
    # In parallel, sharing one output directory, as the Indexed Job's pods share the output claim.
    processes = [start_runner(env, tmp_path / f"predict-{i}.log") for i, env in enumerate(predict_envs)]
    for i, (process, env) in enumerate(zip(processes, predict_envs, strict=True)):
        done = finish(process, env, tmp_path / f"predict-{i}.log")
        assert done.code == 0, done.log
        assert done.message is None  # predict tasks report through their predictions, not a summary
        # Numbered from 0, as the status, `assay logs --task` and the pods are.
        assert f"predict task {i} (tasks 0..3)" in done.log
    evaluated = run_runner(task_env(digits, tmp_path, step=Step.EVALUATE, task_count=4), name="evaluate")
    assert evaluated.code == 0, evaluated.log
    assert evaluated.summary == one_task_summary
    assert evaluated.message is not None and getattr(evaluated.message, "records", None) == 899

    expected = sklearn_metrics(digits)
    assert evaluated.summary["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
    assert evaluated.summary["macro avg/f1-score"] == pytest.approx(expected["macro f1"], abs=1e-12)
    assert next(iter(evaluated.summary)) == "accuracy"  # the handler's order: headline first

    output = tmp_path / "output"
    report = json.loads((output / "report.json").read_text())
    assert report["records"] == 899 and report["summary"] == evaluated.summary
    assert report["model"] == {"name": "digits-svc", "version": "v1", "uri": str(digits.model)}
    assert report["predictions"] == "predictions/"
    assert sorted(p.name for p in (output / "predictions").iterdir()) == [
        f"shard-0000{i}-of-00004.jsonl" for i in range(4)
    ]


def test_local_run_equals_one_task(
    digits: Digits, tmp_path: Path, one_task_summary: dict[str, object]
) -> None:
    manifest = tmp_path / "evaluation.yaml"
    example = yaml.safe_load((Path(__file__).parents[2] / "examples/digits/evaluation.yaml").read_text())
    example["metadata"]["annotations"]["assay.dev/local-volumes"] = (
        f"assay-examples={digits.model.parent.parent}"
    )
    example["spec"]["model"]["uri"] = f"pvc://assay-examples/{digits.model.parent.name}/model"
    example["spec"]["dataset"]["uri"] = f"pvc://assay-examples/{digits.model.parent.name}/data"
    manifest.write_text(yaml.safe_dump(example))
    app = typer.Typer()
    app.command()(run_command)
    result = CliRunner().invoke(
        app,
        [
            "-f",
            str(manifest),
            "--local",
            "--tasks",
            "3",
            "--parallel",
            "2",
            "-o",
            "json",
            "--output-dir",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["tasks"] == 3 and body["records"] == 899
    assert body["summary"] == one_task_summary
    assert (tmp_path / "out" / "logs" / "evaluate-0.log").exists()


def test_local_run_reports_a_failed_task(digits: Digits, tmp_path: Path) -> None:
    manifest = tmp_path / "evaluation.yaml"
    example = yaml.safe_load((Path(__file__).parents[2] / "examples/digits/evaluation.yaml").read_text())
    example["spec"]["handler"] = "digits_handler:NoSuchClass"
    example["spec"]["model"]["uri"] = f"file://{digits.model}"
    example["spec"]["dataset"]["uri"] = f"file://{digits.data}"
    manifest.write_text(yaml.safe_dump(example))
    app = typer.Typer()
    app.command()(run_command)
    result = CliRunner().invoke(
        app, ["-f", str(manifest), "--local", "--tasks", "2", "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 11, result.output
    assert "HandlerNotImportable" in result.output and "NoSuchClass" in result.output


def test_dataset_over_http_with_checksum(
    digits: Digits, tmp_path: Path, one_task_summary: dict[str, object], run_runner: Callable[..., Finished]
) -> None:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(digits.data))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        digest = hashlib.sha256(digits.dataset_file.read_bytes()).hexdigest()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/digits-test.jsonl#sha256={digest}"
        env = task_env(digits, tmp_path, dataset_uri=url)
        env["ASSAY_DOWNLOAD_DIR"] = str(tmp_path / "downloads")
        finished = run_runner(env)
        assert finished.code == 0, finished.log
        assert finished.summary == one_task_summary
    finally:
        server.shutdown()
        server.server_close()


def test_handler_name_is_the_documented_one() -> None:
    assert (
        yaml.safe_load((Path(__file__).parents[2] / "examples/digits/evaluation.yaml").read_text())["spec"][
            "handler"
        ]
        == HANDLER
    )
