"""``python -m assay.runner``: a task's environment in; its exit code and termination message out.

Every failure becomes a :class:`~assay.runner.failures.TaskFailed` with an :class:`~assay.contract.ExitCode`,
written as ``failure_message(reason, message)`` to the termination-message path and returned as the exit
code, so the controller can name it in the Evaluation's status. The evaluate step writes
``result_message(summary, records)`` there instead.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from assay.contract import (
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ENV_OUTPUT_URI,
    ENV_TERMINATION_MESSAGE_PATH,
    ContractError,
    ExitCode,
    Step,
    TaskEnvironment,
    failure_message,
    result_message,
)
from assay.runner.datasets import Dataset, DatasetError, open_dataset
from assay.runner.debug import DebugServer, start_debug_server, wait_until_stopped
from assay.runner.failures import TaskFailed
from assay.runner.handlers import load_handler
from assay.runner.locations import REMOTE_SCHEMES, LocationError, fetch, local_path
from assay.runner.steps import evaluate_predictions, predict_and_evaluate, predict_shard

log = logging.getLogger("assay.runner")


def resolve_model_dir(env: TaskEnvironment) -> Path:
    try:
        path = fetch(env.model_uri, env.model_version, pvc_root=env.pvc_root)
    except LocationError as exc:
        raise TaskFailed(ExitCode.MODEL_NOT_FOUND, f"model {env.model_name or env.model_uri}: {exc}") from exc
    if not path.is_dir():
        what = "is not a directory (or a .tar.gz/.zip archive)" if path.exists() else "does not exist"
        raise TaskFailed(ExitCode.MODEL_NOT_FOUND, f"model location {env.model_uri} ({path}) {what}")
    return path


def open_task_dataset(env: TaskEnvironment) -> Dataset:
    try:
        return open_dataset(fetch(env.dataset_uri, env.dataset_version, pvc_root=env.pvc_root))
    except (LocationError, DatasetError) as exc:
        raise TaskFailed(
            ExitCode.DATASET_UNREADABLE, f"dataset {env.dataset_name or env.dataset_uri}: {exc}"
        ) from exc


def resolve_output_dir(uri: str, pvc_root: str) -> Path:
    """The output directory, created and checked writable; remote outputs are not supported."""
    try:
        scheme = uri.strip().partition("://")[0].lower() if "://" in uri else "file"
        if scheme in REMOTE_SCHEMES:  # before parsing: an http:// output is refused as an output
            raise LocationError(f"{uri}: outputs must be a path, file:// or pvc:// location, not {scheme}://")
        path = local_path(uri, pvc_root=pvc_root)
    except LocationError as exc:
        raise TaskFailed(ExitCode.OUTPUT_NOT_WRITABLE, str(exc)) from exc
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A probe of its own: tasks sharing the volume are all PID 1, so a name from the pid would collide.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".assay-write-check-"):
            pass
    except OSError as exc:
        raise TaskFailed(
            ExitCode.OUTPUT_NOT_WRITABLE, f"output {uri} ({path}) is not writable: {exc}"
        ) from exc
    return path


def execute(env: TaskEnvironment, output: Path) -> str | None:
    """Run the task's step(s); returns the termination message of an evaluate step, else None."""
    model_dir = resolve_model_dir(env)
    handler = load_handler(model_dir, env.handler)
    log.info(
        "handler %s loaded from %s (%s)",
        env.handler,
        model_dir,
        "batched" if handler.batched else "per record",
    )
    dataset = open_task_dataset(env)
    if env.step is Step.PREDICT:
        predict_shard(handler, dataset, output, env.task_index, env.task_count, env.batch_size)
        return None
    meta = {
        "evaluation": env.evaluation,
        "uid": env.evaluation_uid,
        "model": {"name": env.model_name, "version": env.model_version, "uri": env.model_uri},
        "dataset": {"name": env.dataset_name, "version": env.dataset_version, "uri": env.dataset_uri},
        "handler": env.handler,
    }
    if env.step is Step.ALL and env.task_count == 1:
        result = predict_and_evaluate(handler, dataset, output, env.batch_size, meta)
    else:
        if env.step is Step.ALL:  # several tasks, each running both steps: predict this one's shard first
            predict_shard(handler, dataset, output, env.task_index, env.task_count, env.batch_size)
        result = evaluate_predictions(handler, dataset, output, env.task_count, meta)
    log.info("summary over %d records: %s", result.records, result.summary)
    return result_message(result.summary, result.records)


def run_task(environ: Mapping[str, str]) -> int:
    """The whole task; never raises. Returns the exit code."""
    message_path = environ.get(ENV_TERMINATION_MESSAGE_PATH) or DEFAULT_TERMINATION_MESSAGE_PATH
    server: DebugServer | None = None
    stays_up = False
    try:
        try:
            env = TaskEnvironment.from_env(environ)
        except ContractError as exc:
            raise TaskFailed(ExitCode.INVALID_CONFIG, str(exc)) from exc
        message_path = env.termination_message_path
        log.info(
            "task step=%s index=%d tasks=%d evaluation=%s",
            env.step.value,
            env.task_index,
            env.task_count,
            env.evaluation or "-",
        )
        if env.debug:
            # The whole filesystem: the model, the dataset and the output are all somewhere under it.
            server = start_debug_server(env.debug_port, env.debug_password_file, Path("/"))
            stays_up = env.stays_up_after_work
        if env.output_uri:
            message = execute(env, resolve_output_dir(env.output_uri, env.pvc_root))
        elif env.step is Step.ALL and env.task_count == 1:
            # A single task needs no shared volume; its predictions live only as long as the process.
            with tempfile.TemporaryDirectory(prefix="assay-output-") as scratch:
                log.info("no %s: predictions kept in %s for this process only", ENV_OUTPUT_URI, scratch)
                message = execute(env, Path(scratch))
        else:
            raise TaskFailed(
                ExitCode.INVALID_CONFIG,
                f"{ENV_OUTPUT_URI} is required for step {env.step.value} with {env.task_count} task(s): "
                "predict and evaluate tasks share predictions through it",
            )
        if message is not None:
            _write_termination_message(message_path, message)
        code = ExitCode.OK
    except TaskFailed as failure:
        log.error("task failed: %s (exit code %d)", failure, failure.code.value)
        _write_termination_message(message_path, failure_message(failure.code.reason, failure.message))
        code = failure.code
    except Exception as exc:
        log.exception("internal error in the runner")
        message = f"internal error in the runner: {type(exc).__name__}: {exc}"
        _write_termination_message(message_path, failure_message(ExitCode.INTERNAL_ERROR.reason, message))
        code = ExitCode.INTERNAL_ERROR
    if server is not None:
        if stays_up:
            wait_until_stopped(server)
        else:  # an earlier step: its Job must complete for the final step to start
            log.info("debug: not the final step, so the task ends and its debug server with it")
            server.stop()
    return int(code)


def _write_termination_message(path: str, message: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(message)
    except OSError as exc:
        log.warning("cannot write the termination message to %s: %s", path, exc)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


USAGE = """usage: python -m assay.runner

Runs one Assay task as described by its environment (the contract in assay.contract): ASSAY_STEP
(predict | evaluate | all), ASSAY_TASK_INDEX / ASSAY_TASK_COUNT, ASSAY_MODEL_URI (+ ASSAY_MODEL_VERSION),
ASSAY_HANDLER (module:attribute), ASSAY_DATASET_URI (+ ASSAY_DATASET_VERSION), ASSAY_OUTPUT_URI,
ASSAY_BATCH_SIZE, ASSAY_TERMINATION_MESSAGE_PATH, ASSAY_DEBUG / ASSAY_DEBUG_PORT / ASSAY_DEBUG_PASSWORD_FILE.
Exit code 0 on success, else the failure's code (assay.contract.ExitCode); the termination message says why.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        if args[0] in ("-h", "--help"):
            print(USAGE, end="")
            return 0
        print(
            f"unexpected arguments {args}: the runner reads its task from the environment\n\n{USAGE}", end=""
        )
        return int(ExitCode.INVALID_CONFIG)
    configure_logging()
    return run_task(dict(os.environ))
