"""Running an Evaluation on this machine, the way the cluster would: one runner process per task.

``assay run --local`` builds a :class:`LocalPlan` from the manifest (its environment rendered by the
controller's own :func:`assay.render.task_environment`), then :func:`run_local` starts ``python -m
assay.runner`` once per task of each step of the layout (:func:`assay.contract.steps_for`): the predict
shards all in parallel, as the Indexed Job would, then the evaluate step. With one task a single process
runs both steps, as the single Job does.

Locations: ``pvc://claim/path`` maps to a local directory per claim, given with ``--volume claim=DIR`` or the
manifest annotation ``assay.dev/local-volumes: "claim=DIR,other=DIR2"`` (relative directories are taken from
the manifest's folder); ``file://`` paths that are relative are taken from the manifest's folder too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from assay.contract import (
    ENV_DEBUG_PASSWORD_FILE,
    ENV_JOB_COMPLETION_INDEX,
    ENV_OUTPUT_URI,
    ENV_TASK_INDEX,
    ExitCode,
    Step,
    TaskEnvironment,
    TaskFailure,
    TaskResult,
    UnreadableMessage,
    parse_termination_message,
    pvc_claim,
    step_task_count,
    steps_for,
)
from assay.runner.failures import TaskFailed
from assay.runner.main import open_task_dataset
from assay.runner.predictions import PREDICTIONS_DIR, shard_file_name
from assay.runner.steps import count_records

LOCAL_VOLUMES_ANNOTATION = "assay.dev/local-volumes"
# How often the parent looks at the shard files to move the progress bar.
POLL_SECONDS = 0.2


class LocalRunError(Exception):
    """The manifest cannot be run locally as given (unmapped claim, bad annotation, ...)."""


@dataclass(frozen=True)
class LocalPlan:
    """Everything a local run needs, taken from an Evaluation manifest: the environment its tasks get
    (locations made local; step, index, output and termination-message path are set per task)."""

    name: str
    environment: TaskEnvironment

    @property
    def tasks(self) -> int:
        return self.environment.task_count


def parse_volume_mappings(entries: Sequence[str], base_dir: Path) -> dict[str, Path]:
    """``["claim=DIR", ...]`` (or one comma-separated string each) → ``{claim: absolute DIR}``."""
    volumes: dict[str, Path] = {}
    for entry in entries:
        for item in entry.split(","):
            if not item.strip():
                continue
            claim, sep, directory = item.strip().partition("=")
            if not sep or not claim or not directory:
                raise LocalRunError(f"volume mapping {item.strip()!r} must look like claim=DIR")
            path = Path(directory).expanduser()
            volumes[claim] = path if path.is_absolute() else (base_dir / path)
    return {claim: path.resolve() for claim, path in volumes.items()}


def localize_uri(uri: str, volumes: Mapping[str, Path], base_dir: Path) -> str:
    """A manifest location as seen here: claims through ``volumes``, relative files from ``base_dir``."""
    claim = pvc_claim(uri)
    if claim is not None:
        if claim not in volumes:
            raise LocalRunError(
                f"{uri} uses the claim {claim!r}, which has no local directory: "
                f"add --volume {claim}=DIR or the annotation {LOCAL_VOLUMES_ANNOTATION}: '{claim}=DIR'"
            )
        rest = uri[len("pvc://") + len(claim) :].lstrip("/")
        return str(volumes[claim] / rest) if rest else str(volumes[claim])
    if "://" not in uri or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
        return str(path if path.is_absolute() else (base_dir / path).resolve())
    return uri


def local_task_environment(plan: LocalPlan, step: Step, index: int, output: Path) -> dict[str, str]:
    """The environment of one local task: the plan's, with the step, the index and local paths (in a pod
    the index comes from the pod itself)."""
    environment = replace(
        plan.environment,
        step=step,
        task_index=index,
        output_uri=str(output),
        termination_message_path=str(output / "logs" / f"{step.value}-{index}.termination-log"),
    ).to_env()
    environment[ENV_TASK_INDEX] = str(index)
    return environment


def _inherited_environment() -> dict[str, str]:
    """This process's environment without any task variables a developer's shell may hold."""
    task_keys = set(TaskEnvironment(step=Step.ALL, model_uri="-", handler="-", dataset_uri="-").to_env())
    task_keys |= {ENV_TASK_INDEX, ENV_OUTPUT_URI, ENV_DEBUG_PASSWORD_FILE, ENV_JOB_COMPLETION_INDEX}
    return {k: v for k, v in os.environ.items() if k not in task_keys}


def dataset_size(plan: LocalPlan) -> int | None:
    """The dataset's size for the progress bar, read as the runner reads it; None if unreadable here (the
    runner will say why)."""
    try:
        return count_records(open_task_dataset(plan.environment))
    except (TaskFailed, OSError):
        return None


@dataclass
class TaskProcess:
    step: Step
    index: int
    process: subprocess.Popen[bytes]
    log_path: Path
    message_path: Path

    @property
    def label(self) -> str:
        return f"{self.step.value} task {self.index}"


@dataclass(frozen=True)
class LocalFailure:
    """A local task that failed: which one, why, and the end of its log."""

    task: str
    exit_code: int
    reason: str
    message: str
    log_tail: str


@dataclass(frozen=True)
class LocalOutcome:
    result: TaskResult | None
    failure: LocalFailure | None
    output: Path
    seconds: float
    logs: list[Path] = field(default_factory=list)


class ShardProgress:
    """Counts the predictions written so far by reading only what was appended to each shard file."""

    def __init__(self, output: Path, tasks: int) -> None:
        self.files = [output / PREDICTIONS_DIR / shard_file_name(i, tasks) for i in range(tasks)]
        self.offsets = [0] * tasks
        self.lines = [0] * tasks

    def done(self) -> int:
        for i, path in enumerate(self.files):
            try:
                with path.open("rb") as file:
                    file.seek(self.offsets[i])
                    chunk = file.read()
            except FileNotFoundError:
                continue
            complete = chunk.rfind(b"\n") + 1  # a half-written line is counted next time
            self.lines[i] += chunk.count(b"\n", 0, complete)
            self.offsets[i] += complete
        return sum(self.lines)


def _start(plan: LocalPlan, step: Step, index: int, output: Path) -> TaskProcess:
    env = {**_inherited_environment(), **local_task_environment(plan, step, index, output)}
    log_path = output / "logs" / f"{step.value}-{index}.log"
    message_path = Path(env["ASSAY_TERMINATION_MESSAGE_PATH"])
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "assay.runner"], env=env, stdout=log, stderr=log)
    return TaskProcess(step, index, process, log_path, message_path)


def _failure(task: TaskProcess) -> LocalFailure:
    code = task.process.returncode
    reason, message = f"ExitCode{code}", "the runner wrote no termination message"
    try:
        parsed = parse_termination_message(task.message_path.read_text(encoding="utf-8"))
        if isinstance(parsed, TaskFailure):
            reason, message = parsed.reason, parsed.message
    except (OSError, UnreadableMessage):
        pass
    lines = task.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return LocalFailure(task.label, code, reason, message, "\n".join(lines[-15:]))


def _run_all(
    starters: Sequence[Callable[[], TaskProcess]],
    parallel: int,
    on_tick: Callable[[], None],
    poll: float = POLL_SECONDS,
) -> tuple[list[TaskProcess], LocalFailure | None]:
    """Run the tasks, at most ``parallel`` at a time; on the first failure stop the others (as
    ``maxFailedIndexes: 0`` does for the Indexed Job). Returns the tasks started and the failure, if any."""
    pending = list(starters)
    running: list[TaskProcess] = []
    started: list[TaskProcess] = []
    while pending or running:
        while pending and len(running) < parallel:
            task = pending.pop(0)()
            running.append(task)
            started.append(task)
        on_tick()
        for task in list(running):
            if task.process.poll() is None:
                continue
            running.remove(task)
            if task.process.returncode != 0:
                for other in running:
                    other.process.terminate()
                for other in running:
                    other.process.wait()
                return started, _failure(task)
        if running:
            time.sleep(poll)
    on_tick()
    return started, None


def _report_progress(on_progress: Callable[[str, int], None], phase: str, progress: ShardProgress) -> None:
    on_progress(phase, progress.done())


def run_local(
    plan: LocalPlan,
    output: Path,
    on_progress: Callable[[str, int], None] = lambda phase, done: None,
    parallel: int | None = None,
) -> LocalOutcome:
    """Run the plan's tasks as separate runner processes; ``on_progress(phase, records_done)`` while it runs.

    At most ``parallel`` predict processes run at once (default: one per CPU). ``output`` is emptied of
    earlier predictions first: a local run always starts from scratch.
    """
    started = time.monotonic()
    shutil.rmtree(output / PREDICTIONS_DIR, ignore_errors=True)
    (output / "logs").mkdir(parents=True, exist_ok=True)
    progress = ShardProgress(output, plan.tasks)
    at_once = max(1, parallel or os.cpu_count() or 1)
    processes: list[TaskProcess] = []
    failure: LocalFailure | None = None
    for step in steps_for(plan.tasks):  # each step once the one before succeeded, as the Jobs are created
        phase = "evaluate" if step is Step.EVALUATE else "predict"
        count = step_task_count(step, plan.tasks)
        starters = [partial(_start, plan, step, i, output) for i in range(count)]
        ran, failure = _run_all(starters, at_once, partial(_report_progress, on_progress, phase, progress))
        processes += ran
        if failure is not None:
            break
    logs = [p.log_path for p in processes]
    seconds = time.monotonic() - started
    if failure is not None:
        return LocalOutcome(None, failure, output, seconds, logs)
    last = processes[-1]
    try:
        parsed = parse_termination_message(last.message_path.read_text(encoding="utf-8"))
    except (OSError, UnreadableMessage) as exc:
        unreadable = LocalFailure(last.label, int(ExitCode.INTERNAL_ERROR), "ResultsUnreadable", str(exc), "")
        return LocalOutcome(None, unreadable, output, seconds, logs)
    if not isinstance(parsed, TaskResult):
        failed = LocalFailure(last.label, 0, parsed.reason, parsed.message, "")
        return LocalOutcome(None, failed, output, seconds, logs)
    return LocalOutcome(parsed, None, output, seconds, logs)
