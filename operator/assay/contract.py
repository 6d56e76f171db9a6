"""The contract between the controller and the runner inside a task pod.

The controller renders these environment variables into every task container; the runner parses them
back with :meth:`TaskEnvironment.from_env`. Both sides import this module, so a name changes in one place.

How a task reports back:

* its exit code (see :class:`ExitCode`): 0 on success, a documented code per failure reason;
* its termination message (``/dev/termination-log``, at most :data:`TERMINATION_MESSAGE_LIMIT` bytes),
  a JSON object built by :func:`result_message` (evaluate step: ``{"summary": {...}, "records": N}``) or
  :func:`failure_message` (any step: ``{"reason": "...", "message": "..."}``), read back by
  :func:`parse_termination_message`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

# --- environment variable names -------------------------------------------------------------------------

ENV_STEP = "ASSAY_STEP"
ENV_TASK_INDEX = "ASSAY_TASK_INDEX"
ENV_TASK_COUNT = "ASSAY_TASK_COUNT"
ENV_EVALUATION = "ASSAY_EVALUATION"  # "namespace/name", for logs and reports
ENV_EVALUATION_UID = "ASSAY_EVALUATION_UID"
ENV_MODEL_NAME = "ASSAY_MODEL_NAME"
ENV_MODEL_VERSION = "ASSAY_MODEL_VERSION"
ENV_MODEL_URI = "ASSAY_MODEL_URI"
ENV_HANDLER = "ASSAY_HANDLER"
ENV_DATASET_NAME = "ASSAY_DATASET_NAME"
ENV_DATASET_VERSION = "ASSAY_DATASET_VERSION"
ENV_DATASET_URI = "ASSAY_DATASET_URI"
ENV_OUTPUT_URI = "ASSAY_OUTPUT_URI"
ENV_BATCH_SIZE = "ASSAY_BATCH_SIZE"
ENV_DEBUG = "ASSAY_DEBUG"
ENV_DEBUG_PORT = "ASSAY_DEBUG_PORT"
# The path of a file holding the debug password, never the password itself: an environment variable stays in
# /proc/<pid>/environ for the life of the process, whatever the process does with it afterwards.
ENV_DEBUG_PASSWORD_FILE = "ASSAY_DEBUG_PASSWORD_FILE"
ENV_TERMINATION_MESSAGE_PATH = "ASSAY_TERMINATION_MESSAGE_PATH"
ENV_PVC_ROOT = "ASSAY_PVC_ROOT"
# Kubernetes sets this in every pod of an Indexed Job; used when ASSAY_TASK_INDEX is absent.
ENV_JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"

# --- defaults and fixed places --------------------------------------------------------------------------

DEFAULT_BATCH_SIZE = 64
DEFAULT_DEBUG_PORT = 8000
# The debug server is a shell in a GPU pod: admission refuses a shorter user-given password, the operator
# generates longer ones, and the runner refuses to start the server behind a shorter one.
MIN_DEBUG_PASSWORD_LENGTH = 16
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
# The kubelet keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_LIMIT = 4096
# Where the controller mounts a `pvc://claim/...` location inside task pods: <root>/<claim>/...
DEFAULT_PVC_ROOT = "/assay/volumes"
# Where the controller mounts the debug password (one key of a Secret volume) inside task pods.
DEBUG_PASSWORD_DIR = "/assay/debug"
DEBUG_PASSWORD_FILE_NAME = "password"
DEBUG_PASSWORD_FILE = f"{DEBUG_PASSWORD_DIR}/{DEBUG_PASSWORD_FILE_NAME}"
# The container name of every task; logs and exit codes are read from it.
TASK_CONTAINER = "task"


class Step(StrEnum):
    """Which part of an evaluation a task runs."""

    PREDICT = "predict"  # one shard of the dataset through the handler
    EVALUATE = "evaluate"  # all predictions into summary metrics
    ALL = "all"  # both, in one process (single-task evaluations)


# --- the step layout -----------------------------------------------------------------------------------
#
# Decided here, once, for the controller (which Jobs, which task entries), local runs and the CLI: an
# Evaluation of ``tasks`` > 1 runs ``tasks`` predict tasks (one shard each, in parallel), then one evaluate
# task over all their predictions; an Evaluation of one task runs a single task of step ``all``.

# The order tasks run and are listed in: predict shards before the evaluate step (``all`` runs alone). Keyed
# by the step's value too (a Step is a str), for steps read back from pod labels.
STEP_ORDER: Mapping[str, int] = {Step.PREDICT: 0, Step.ALL: 0, Step.EVALUATE: 1}


def steps_for(tasks: int) -> tuple[Step, ...]:
    """The steps an Evaluation of ``tasks`` tasks runs, in order."""
    if tasks < 1:
        raise ValueError(f"an evaluation has at least one task, got {tasks}")
    return (Step.PREDICT, Step.EVALUATE) if tasks > 1 else (Step.ALL,)


def first_step(tasks: int) -> Step:
    """The step that starts an evaluation: the predict shards, or everything in one task."""
    return steps_for(tasks)[0]


def final_step(tasks: int) -> Step:
    """The step whose task reports the summary (its termination message) and writes the report."""
    return steps_for(tasks)[-1]


def step_task_count(step: Step, tasks: int) -> int:
    """How many tasks run ``step``: one per shard for predict, one for evaluate or all."""
    return tasks if step is Step.PREDICT else 1


def task_slots(tasks: int) -> list[tuple[Step, int]]:
    """Every task as (step, index), in the order they run: the predict shards then evaluate, or one all."""
    return [(step, index) for step in steps_for(tasks) for index in range(step_task_count(step, tasks))]


class ExitCode(IntEnum):
    """Exit codes of the runner; each failure reason has its own so the controller can name it."""

    OK = 0
    INTERNAL_ERROR = 1
    INVALID_CONFIG = 2
    MODEL_NOT_FOUND = 10
    HANDLER_NOT_IMPORTABLE = 11
    HANDLER_FAILED = 12
    DATASET_UNREADABLE = 13
    OUTPUT_NOT_WRITABLE = 14
    PREDICTIONS_MISSING = 15
    DEBUG_PASSWORD_MISSING = 16

    @property
    def reason(self) -> str:
        """The CamelCase reason shown in task status and conditions."""
        return "".join(part.capitalize() for part in self.name.split("_"))


def reason_for_exit_code(code: int | None) -> str:
    """A reason for a task's exit code; codes the runner does not define map to ``ExitCode<n>``."""
    if code is None:
        return "Unknown"
    try:
        return ExitCode(code).reason
    except ValueError:
        return f"ExitCode{code}"


# --- pvc:// locations -----------------------------------------------------------------------------------


def pvc_claim(uri: str) -> str | None:
    """The claim name of a ``pvc://claim/path`` URI, else None."""
    if not uri.startswith("pvc://"):
        return None
    claim = uri[len("pvc://") :].split("/", 1)[0]
    return claim or None


def pvc_local_path(uri: str, root: str = DEFAULT_PVC_ROOT) -> str:
    """Where a ``pvc://claim/path`` URI is found inside a task pod (or under ``root`` on a laptop)."""
    rest = uri[len("pvc://") :]
    return f"{root.rstrip('/')}/{rest}"


# --- the output directory -----------------------------------------------------------------------------
#
# What a run leaves in its output location (``spec.output``; ``assay run --local``'s directory), read back by
# :mod:`assay.results` (``assay results``, the console's Results tab):
#
# * ``report.json``: the evaluate step's report: ``summary`` (flat, nothing dropped), ``metrics`` (the
#   handler's nested metrics as returned), ``records``, ``predictionShards`` (how many shard files of
#   ``predictions/`` hold them), ``finishedAt`` and the run's model/dataset facts.
# * ``predictions/shard-NNNNN-of-MMMMM.jsonl``: one JSON object per line and record, in dataset order:
#   ``{"index": <record index>, "prediction": <value>}`` plus ``"label": <value>`` when the record has a
#   ``label`` field, so the results can show what was expected beside what was predicted.

REPORT_FILE = "report.json"
PREDICTIONS_DIR = "predictions"
LABEL_FIELD = "label"
SHARD_FILE_PATTERN = re.compile(r"^shard-(\d{5,})-of-(\d{5,})\.jsonl$")


def output_uri(claim: str, path: str | None, namespace: str, name: str) -> str:
    """An Evaluation's output location, given to its tasks and reported in ``status.results.location``:
    ``pvc://<claim>/<path>``, the path defaulting to ``<namespace>/<name>`` so that Evaluations sharing a
    claim never share a directory."""
    return f"pvc://{claim}/{(path or f'{namespace}/{name}').strip('/')}"


def shard_file_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}.jsonl"


# --- the environment ------------------------------------------------------------------------------------


class ContractError(ValueError):
    """The task's environment does not follow the contract."""


@dataclass(frozen=True)
class TaskEnvironment:
    """Everything a task needs to know, as rendered by the controller."""

    step: Step
    model_uri: str
    handler: str
    dataset_uri: str
    task_index: int = 0
    task_count: int = 1
    output_uri: str | None = None
    evaluation: str = ""
    evaluation_uid: str = ""
    model_name: str = ""
    model_version: str = ""
    dataset_name: str = ""
    dataset_version: str = ""
    batch_size: int = DEFAULT_BATCH_SIZE
    debug: bool = False
    debug_port: int = DEFAULT_DEBUG_PORT
    termination_message_path: str = DEFAULT_TERMINATION_MESSAGE_PATH
    pvc_root: str = DEFAULT_PVC_ROOT
    # Where the debug password is read from (a Secret volume's file in a pod); the password is in no variable.
    debug_password_file: str | None = None

    @property
    def stays_up_after_work(self) -> bool:
        """Whether a debug task keeps its pod up once its work is done: only the final step's (evaluate, or
        the single ``all``). An earlier step's pod must end, or its Job never completes and the final step
        never starts; its debug server is there while it works."""
        return self.debug and self.step is final_step(self.task_count)

    def to_env(self) -> dict[str, str]:
        """Plain variables for a container. The index is left out: the controller renders it as a fieldRef
        so no per-pod value lands in a Job spec."""
        env = {
            ENV_STEP: self.step.value,
            ENV_TASK_COUNT: str(self.task_count),
            ENV_EVALUATION: self.evaluation,
            ENV_EVALUATION_UID: self.evaluation_uid,
            ENV_MODEL_NAME: self.model_name,
            ENV_MODEL_VERSION: self.model_version,
            ENV_MODEL_URI: self.model_uri,
            ENV_HANDLER: self.handler,
            ENV_DATASET_NAME: self.dataset_name,
            ENV_DATASET_VERSION: self.dataset_version,
            ENV_DATASET_URI: self.dataset_uri,
            ENV_BATCH_SIZE: str(self.batch_size),
            ENV_DEBUG: "1" if self.debug else "0",
            ENV_DEBUG_PORT: str(self.debug_port),
            ENV_TERMINATION_MESSAGE_PATH: self.termination_message_path,
            ENV_PVC_ROOT: self.pvc_root,
        }
        if self.output_uri:
            env[ENV_OUTPUT_URI] = self.output_uri
        if self.debug_password_file:
            env[ENV_DEBUG_PASSWORD_FILE] = self.debug_password_file
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TaskEnvironment:
        """Parse a task's environment; raises :class:`ContractError` naming what is missing or wrong."""

        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise ContractError(f"{name} is required but not set")
            return value

        def integer(name: str, default: int, minimum: int) -> int:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError as exc:
                raise ContractError(f"{name} must be an integer, got {raw!r}") from exc
            if value < minimum:
                raise ContractError(f"{name} must be >= {minimum}, got {value}")
            return value

        try:
            step = Step(environ.get(ENV_STEP, Step.ALL.value))
        except ValueError as exc:
            allowed = ", ".join(s.value for s in Step)
            raise ContractError(
                f"{ENV_STEP} must be one of {allowed}, got {environ.get(ENV_STEP)!r}"
            ) from exc
        index_var = ENV_TASK_INDEX if environ.get(ENV_TASK_INDEX, "").strip() else ENV_JOB_COMPLETION_INDEX
        task_count = integer(ENV_TASK_COUNT, 1, 1)
        task_index = integer(index_var, 0, 0)
        if task_index >= task_count:
            raise ContractError(f"{index_var}={task_index} is out of range for {ENV_TASK_COUNT}={task_count}")
        return cls(
            step=step,
            model_uri=required(ENV_MODEL_URI),
            handler=required(ENV_HANDLER),
            dataset_uri=required(ENV_DATASET_URI),
            task_index=task_index,
            task_count=task_count,
            output_uri=environ.get(ENV_OUTPUT_URI) or None,
            evaluation=environ.get(ENV_EVALUATION, ""),
            evaluation_uid=environ.get(ENV_EVALUATION_UID, ""),
            model_name=environ.get(ENV_MODEL_NAME, ""),
            model_version=environ.get(ENV_MODEL_VERSION, ""),
            dataset_name=environ.get(ENV_DATASET_NAME, ""),
            dataset_version=environ.get(ENV_DATASET_VERSION, ""),
            batch_size=integer(ENV_BATCH_SIZE, DEFAULT_BATCH_SIZE, 1),
            debug=environ.get(ENV_DEBUG, "0").strip().lower() in {"1", "true", "yes"},
            debug_port=integer(ENV_DEBUG_PORT, DEFAULT_DEBUG_PORT, 1),
            termination_message_path=environ.get(ENV_TERMINATION_MESSAGE_PATH)
            or DEFAULT_TERMINATION_MESSAGE_PATH,
            pvc_root=environ.get(ENV_PVC_ROOT) or DEFAULT_PVC_ROOT,
            debug_password_file=environ.get(ENV_DEBUG_PASSWORD_FILE) or None,
        )


# --- the termination message ----------------------------------------------------------------------------

Scalar = float | int | str | bool | None


@dataclass(frozen=True)
class TaskResult:
    """What an evaluate step reports: flat summary metrics and how many records they cover."""

    summary: dict[str, Scalar]
    records: int | None = None


@dataclass(frozen=True)
class TaskFailure:
    """What a failed task reports about itself."""

    reason: str
    message: str


class UnreadableMessage(ValueError):
    """A termination message that is not what the contract says (garbage, too large, wrong shape)."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def result_message(summary: Mapping[str, Scalar], records: int | None = None) -> str:
    """Encode an evaluate step's result, dropping the least important metrics until it fits the limit.

    Metrics are kept in the order given (put the headline first); what does not fit stays in the report.
    """
    kept: dict[str, Scalar] = {}
    for key, value in summary.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        candidate = {**kept, key: value}
        body: dict[str, Any] = {"summary": candidate}
        if records is not None:
            body["records"] = records
        if len(_dumps(body).encode()) > TERMINATION_MESSAGE_LIMIT:
            continue
        kept = candidate
    body = {"summary": kept}
    if records is not None:
        body["records"] = records
    return _dumps(body)


def failure_message(reason: str, message: str) -> str:
    """Encode a failure, truncating the message so the whole fits the limit."""
    budget = TERMINATION_MESSAGE_LIMIT - len(_dumps({"reason": reason, "message": ""}).encode()) - 16
    text = message
    while len(_dumps(text).encode()) - 2 > budget:
        text = text[: max(0, len(text) - max(16, len(text) // 8))]
    if text != message:
        text += "…"
    return _dumps({"reason": reason, "message": text})


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (Python reads them); the apiserver refuses a status carrying one."""
    raise ValueError(f"{name} is not JSON; write null for a metric without a value")


def parse_termination_message(text: str | None) -> TaskResult | TaskFailure:
    """Read a termination message back; raises :class:`UnreadableMessage` with what is wrong."""
    if text is None or not text.strip():
        raise UnreadableMessage("the termination message is empty")
    size = len(text.encode())
    if size > TERMINATION_MESSAGE_LIMIT:
        raise UnreadableMessage(f"the termination message is {size} bytes, over {TERMINATION_MESSAGE_LIMIT}")
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, or e.g. an integer over Python's digit limit
        detail = f"{exc.msg} at {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise UnreadableMessage(f"the termination message is not JSON: {detail}") from exc
    if not isinstance(body, dict):
        raise UnreadableMessage("the termination message is not a JSON object")
    if "summary" in body:
        summary = body["summary"]
        if not isinstance(summary, dict):
            raise UnreadableMessage("'summary' is not a JSON object")
        for key, value in summary.items():
            if not isinstance(value, int | float | str | bool) and value is not None:
                raise UnreadableMessage(f"summary metric {key!r} is not a number, string or boolean")
            if isinstance(value, float) and not math.isfinite(value):
                # e.g. 1e400: Python reads it as inf, which no JSON status write can carry.
                raise UnreadableMessage(f"summary metric {key!r} is not a finite number; write null instead")
        records = body.get("records")
        if records is not None and (not isinstance(records, int) or isinstance(records, bool) or records < 0):
            raise UnreadableMessage("'records' is not a non-negative integer")
        return TaskResult(summary=summary, records=records)
    if isinstance(body.get("reason"), str):
        return TaskFailure(reason=body["reason"], message=str(body.get("message", "")))
    raise UnreadableMessage("the termination message has neither 'summary' nor 'reason'")
