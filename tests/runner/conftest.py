"""Fixtures for tests that run the runner as separate processes, exactly as a task pod does.

Each test gets the digits example (trained once per session into a temporary directory by the example's own
``train.py``) and starts ``python -m assay.runner`` with the contract's environment, real files, and a
termination-message file where the kubelet would have ``/dev/termination-log``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from assay.contract import Step, TaskEnvironment, TaskFailure, TaskResult, parse_termination_message

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "digits"
HANDLER = "digits_handler:DigitsClassifier"


@dataclass(frozen=True)
class Digits:
    """The example's model root (holding v1/) and dataset root (holding v1/digits-test.jsonl)."""

    model: Path
    data: Path

    @property
    def dataset_file(self) -> Path:
        return self.data / "v1" / "digits-test.jsonl"


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    spec = importlib.util.spec_from_file_location("digits_train", EXAMPLE / "train.py")
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    out = tmp_path_factory.mktemp("digits")
    train.train(out)
    return Digits(model=out / "model", data=out / "data")


@dataclass(frozen=True)
class Finished:
    """A runner process that ended: exit code, termination message and log."""

    code: int
    message: TaskResult | TaskFailure | None
    log: str

    @property
    def summary(self) -> dict[str, object]:
        assert isinstance(self.message, TaskResult), f"not a result: {self.message}\n{self.log}"
        return dict(self.message.summary)


def task_env(digits: Digits, work: Path, **overrides: object) -> dict[str, str]:
    """The environment the controller renders for a digits task, plus the per-pod index."""
    fields: dict[str, object] = {
        "step": Step.ALL,
        "model_uri": str(digits.model),
        "model_name": "digits-svc",
        "model_version": "v1",
        "handler": HANDLER,
        "dataset_uri": f"file://{digits.data}",
        "dataset_name": "digits-test",
        "dataset_version": "v1",
        "output_uri": str(work / "output"),
        "termination_message_path": str(work / "termination-log"),
        "evaluation": "tests/digits",
    }
    fields.update(overrides)
    env = TaskEnvironment(**fields).to_env()  # type: ignore[arg-type]
    env["ASSAY_TASK_INDEX"] = str(fields.get("task_index", 0))
    return env


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "JOB_COMPLETION_INDEX"))}


def start_runner(env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "assay.runner"], env={**_clean_environ(), **env}, stdout=log, stderr=log
        )


def finish(
    process: subprocess.Popen[bytes], env: Mapping[str, str], log_path: Path, timeout: float = 120
) -> Finished:
    code = process.wait(timeout=timeout)
    message_path = Path(env["ASSAY_TERMINATION_MESSAGE_PATH"])
    message = parse_termination_message(message_path.read_text()) if message_path.exists() else None
    return Finished(code, message, log_path.read_text(errors="replace"))


@pytest.fixture
def run_runner(tmp_path: Path) -> Callable[..., Finished]:
    """Run one runner process to its end; the log goes to ``tmp_path/<name>.log``."""
    counter = iter(range(1000))

    def run(env: Mapping[str, str], name: str | None = None, timeout: float = 120) -> Finished:
        log_path = tmp_path / f"{name or f'task-{next(counter)}'}.log"
        Path(env["ASSAY_TERMINATION_MESSAGE_PATH"]).unlink(missing_ok=True)
        return finish(start_runner(env, log_path), env, log_path, timeout)

    return run
