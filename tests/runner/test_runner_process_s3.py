"""s3:// locations through boto3 against a local S3-compatible server (moto's), started by the test.

boto3 cannot share ``.venv`` with kubernetes, so the server and the runner run from ``.venv/s3`` (made by
``make venv`` from ``tests/runner/s3-requirements.txt``) with this checkout's ``operator/`` on the path.
Endpoint and credentials reach boto3 through its usual environment variables, as they would in a pod.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.contract import ExitCode, Step, TaskEnvironment, TaskFailure, TaskResult, parse_termination_message

from .conftest import REPO

S3_PYTHON = REPO / ".venv" / "s3" / "bin" / "python"
MODEL = "s3://assay-test/models/summer/"
pytestmark = pytest.mark.timeout(180)

HANDLER = """
class Summer:
    def predict(self, batch):
        return [record["x"] * 2 for record in batch]

    def evaluate(self, rows):
        pairs = list(rows)
        return {"records": len(pairs), "sum": sum(prediction for _, prediction in pairs)}
"""

SEED = """
import sys, boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket="assay-test")
for key, body in zip(sys.argv[1::2], sys.argv[2::2]):
    s3.put_object(Bucket="assay-test", Key=key, Body=body.encode())
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A moto S3 server on 127.0.0.1 and the environment that points boto3 at it."""
    assert S3_PYTHON.exists(), f"{S3_PYTHON} is missing: run make venv"
    port = _free_port()
    server = subprocess.Popen(
        [str(S3_PYTHON), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "moto.log").open("wb"),
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO / "operator"),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ASSAY_DOWNLOAD_DIR": str(tmp_path / "downloads"),
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "moto.log").read_text()
                assert time.monotonic() < deadline, "the S3 server did not start"
                time.sleep(0.1)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def _seed(env: dict[str, str], objects: dict[str, str]) -> None:
    pairs = [item for key_body in objects.items() for item in key_body]
    subprocess.run([str(S3_PYTHON), "-c", SEED, *pairs], env=env, check=True, timeout=60)


def _run(env: dict[str, str], tmp_path: Path, **fields: object) -> tuple[int, object, str]:
    task = TaskEnvironment(
        step=Step.ALL,
        handler="summer:Summer",
        termination_message_path=str(tmp_path / "termination-log"),
        **fields,  # type: ignore[arg-type]
    )
    done = subprocess.run(
        [str(S3_PYTHON), "-m", "assay.runner"],
        env={**env, **task.to_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    message = parse_termination_message((tmp_path / "termination-log").read_text())
    return done.returncode, message, done.stderr


def test_a_model_prefix_and_a_dataset_object_come_from_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    _seed(
        s3_env,
        {
            "models/summer/summer.py": HANDLER,
            "models/summer/assay.json": '{"version": "v2"}',
            "data/v1/part.jsonl": '{"x": 1}\n{"x": 2}\n{"x": 3}\n',
        },
    )
    code, message, log = _run(
        s3_env,
        tmp_path,
        model_uri=MODEL,
        model_version="v2",
        dataset_uri="s3://assay-test/data/v1/part.jsonl",
        dataset_version="v1",
    )
    assert code == 0, log
    assert message == TaskResult(summary={"records": 3, "sum": 12}, records=3)
    downloads = (tmp_path / "downloads").rglob("*")
    downloaded = sorted(
        p.name for p in downloads if p.is_file() and not p.name.startswith(".") and p.suffix != ".pyc"
    )
    assert downloaded == ["assay.json", "part.jsonl", "summer.py"]


def _failure(env: dict[str, str], tmp_path: Path, dataset_uri: str, code: ExitCode) -> str:
    """The message of a run that must fail with ``code``."""
    exit_code, message, log = _run(env, tmp_path, model_uri=MODEL, dataset_uri=dataset_uri)
    assert exit_code == code, log
    assert isinstance(message, TaskFailure) and message.reason == code.reason, log
    return message.message


def test_a_missing_s3_object_is_named(s3_env: dict[str, str], tmp_path: Path) -> None:
    _seed(s3_env, {"models/summer/summer.py": HANDLER})
    missing = "s3://assay-test/data/missing.jsonl"
    assert f"cannot download {missing}" in _failure(s3_env, tmp_path, missing, ExitCode.DATASET_UNREADABLE)


def test_a_changed_s3_object_is_fetched_again(s3_env: dict[str, str], tmp_path: Path) -> None:
    locations = {"model_uri": MODEL, "dataset_uri": "s3://assay-test/data/d.jsonl"}
    _seed(s3_env, {"models/summer/summer.py": HANDLER, "data/d.jsonl": '{"x": 1}\n'})
    code, message, log = _run(s3_env, tmp_path, **locations)
    assert code == 0 and message == TaskResult(summary={"records": 1, "sum": 2}, records=1), log
    changed_handler = HANDLER.replace('"sum"', '"total"')
    _seed(s3_env, {"models/summer/summer.py": changed_handler, "data/d.jsonl": '{"x": 1}\n{"x": 5}\n'})
    code, message, log = _run(s3_env, tmp_path, **locations)  # the same download directory
    assert code == 0 and message == TaskResult(summary={"records": 2, "total": 12}, records=2), log


def test_s3_downloads_over_the_size_cap_are_refused(s3_env: dict[str, str], tmp_path: Path) -> None:
    data = "s3://assay-test/data/d.jsonl"
    _seed(s3_env, {"models/summer/summer.py": HANDLER, "data/d.jsonl": '{"x": 1}\n' * 40})
    capped = {**s3_env, "ASSAY_DOWNLOAD_MAX_BYTES": "300"}  # the handler is 246 bytes, the data 360
    over = "is 360 bytes, over the limit of 300 bytes (ASSAY_DOWNLOAD_MAX_BYTES)"
    assert over in _failure(capped, tmp_path, data, ExitCode.DATASET_UNREADABLE)
    capped["ASSAY_DOWNLOAD_MAX_BYTES"] = "200"
    assert "holds 246 bytes, over the limit of 200" in _failure(
        capped, tmp_path, data, ExitCode.MODEL_NOT_FOUND
    )
