"""Each failure is a failed task with its documented reason (termination message) and exit code."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from assay.contract import ExitCode, Step, TaskFailure

from .conftest import Digits, Finished, task_env

pytestmark = pytest.mark.timeout(300)

RAISES_ON_123 = """
from digits_handler import DigitsClassifier


class Fragile(DigitsClassifier):
    def predict(self, batch):
        if any(record["id"] == 123 for record in batch):
            raise ValueError("cannot read this digit")
        return super().predict(batch)
"""


def _broken_dataset(tmp_path: Path, digits: Digits) -> str:
    lines = digits.dataset_file.read_text().splitlines()
    lines[2] = lines[2][:40]  # a record cut in the middle
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _fragile_model(tmp_path: Path, digits: Digits) -> str:
    shutil.copytree(digits.model, tmp_path / "model")
    (tmp_path / "model" / "v1" / "fragile.py").write_text(RAISES_ON_123)
    return str(tmp_path / "model")


def _file_in_the_way(tmp_path: Path) -> str:
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "output")  # cannot create a directory under a file, even as root


CASES: list[tuple[str, ExitCode, Callable[[Path, Digits], dict[str, object]], str]] = [
    (
        "model-missing",
        ExitCode.MODEL_NOT_FOUND,
        lambda t, d: {"model_uri": str(t / "nowhere")},
        "does not exist",
    ),
    (
        "model-version",
        ExitCode.MODEL_NOT_FOUND,
        lambda t, d: {"model_version": "v9"},
        "version 'v9' not found",
    ),
    (
        "handler-module",
        ExitCode.HANDLER_NOT_IMPORTABLE,
        lambda t, d: {"handler": "nope:X"},
        "'nope' not found",
    ),
    (
        "handler-attribute",
        ExitCode.HANDLER_NOT_IMPORTABLE,
        lambda t, d: {"handler": "digits_handler:Missing"},
        "has no attribute 'Missing'",
    ),
    (
        "handler-raises",
        ExitCode.HANDLER_FAILED,
        lambda t, d: {"model_uri": _fragile_model(t, d), "handler": "fragile:Fragile"},
        "raised on record 123: ValueError: cannot read this digit",
    ),
    (
        "dataset-unreadable",
        ExitCode.DATASET_UNREADABLE,
        lambda t, d: {"dataset_uri": _broken_dataset(t, d), "dataset_version": ""},
        "broken.jsonl line 3: not valid JSON",
    ),
    (
        "dataset-missing",
        ExitCode.DATASET_UNREADABLE,
        lambda t, d: {"dataset_uri": str(t / "none")},
        "none does not exist",
    ),
    (
        "output-not-writable",
        ExitCode.OUTPUT_NOT_WRITABLE,
        lambda t, d: {"output_uri": _file_in_the_way(t)},
        "not writable",
    ),
    (
        "predictions-missing",
        ExitCode.PREDICTIONS_MISSING,
        lambda t, d: {"step": Step.EVALUATE, "task_count": 4},
        "no predictions",
    ),
    (
        "debug-password",
        ExitCode.DEBUG_PASSWORD_MISSING,
        lambda t, d: {"debug": True},
        "no ASSAY_DEBUG_PASSWORD_FILE",
    ),
    (
        "debug-password-file-gone",  # the Secret volume is optional: a Secret deleted since admission
        ExitCode.DEBUG_PASSWORD_MISSING,
        lambda t, d: {"debug": True, "debug_password_file": str(t / "gone")},
        "gone unreadable (No such file or directory)",
    ),
    (
        "no-shared-output",
        ExitCode.INVALID_CONFIG,
        lambda t, d: {"step": Step.PREDICT, "task_count": 2, "output_uri": None},
        "ASSAY_OUTPUT_URI is required",
    ),
]


@pytest.mark.parametrize(("case", "code", "overrides", "message"), CASES, ids=[c[0] for c in CASES])
def test_failure_reason_and_exit_code(
    digits: Digits,
    tmp_path: Path,
    run_runner: Callable[..., Finished],
    case: str,
    code: ExitCode,
    overrides: Callable[[Path, Digits], dict[str, object]],
    message: str,
) -> None:
    finished = run_runner(task_env(digits, tmp_path, **overrides(tmp_path, digits)))
    assert finished.code == code, finished.log
    assert isinstance(finished.message, TaskFailure), finished.log
    assert finished.message.reason == code.reason
    assert message in finished.message.message, finished.message.message
    assert f"(exit code {int(code)})" in finished.log


def test_a_broken_environment_is_invalid_config(
    digits: Digits, tmp_path: Path, run_runner: Callable[..., Finished]
) -> None:
    env = task_env(digits, tmp_path, task_count=2)
    env["ASSAY_TASK_INDEX"] = "5"
    finished = run_runner(env)
    assert finished.code == ExitCode.INVALID_CONFIG
    assert isinstance(finished.message, TaskFailure) and "out of range" in finished.message.message
