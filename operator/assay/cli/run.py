"""``assay run -f evaluation.yaml --local``: the same Evaluation, run on this machine by the same runner.

The quick loop before submitting to a cluster: predict shards run as parallel ``python -m assay.runner``
processes with the pods' environment, a progress bar follows the predictions as they are written, and the
summary is printed as a table (or JSON with ``-o json``). See :mod:`assay.runner.local` for how ``pvc://``
locations map to local directories.
"""

from __future__ import annotations

import json
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from assay.contract import ExitCode, first_step

if TYPE_CHECKING:
    from assay.runner.local import LocalOutcome, LocalPlan

# assay.runner.local is imported where it is used: every other command of the CLI starts without it (0.1 s).
DEFAULT_RUNS_DIR = Path(".assay") / "runs"


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def read_evaluation_manifest(path: Path) -> dict[str, Any]:
    """The first Evaluation or EvaluationSet document of a YAML file."""
    from assay.runner.local import LocalRunError

    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise LocalRunError(f"cannot read {path}: {exc}") from exc
    for document in documents:
        if isinstance(document, dict) and document.get("kind", "Evaluation") in (
            "Evaluation",
            "EvaluationSet",
        ):
            return document
    raise LocalRunError(f"{path} holds no Evaluation (kind: Evaluation or EvaluationSet)")


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def plan_from_manifest(
    raw: dict[str, Any], base_dir: Path, volume_args: list[str], tasks: int | None, batch_size: int | None
) -> LocalPlan:
    """Validate the manifest with the API models and turn it into a local plan, whose environment the
    controller's own :func:`assay.render.task_environment` renders."""
    from assay.api import Evaluation  # the same validation `kubectl apply` gets, minus cluster-side checks
    from assay.render import RenderOptions, task_environment
    from assay.runner.local import (
        LOCAL_VOLUMES_ANNOTATION,
        LocalPlan,
        LocalRunError,
        localize_uri,
        parse_volume_mappings,
    )

    try:
        evaluation = Evaluation.model_validate(raw)
    except ValidationError as exc:
        raise LocalRunError(f"the manifest is not a valid Evaluation: {_problems(exc)}") from exc
    meta = evaluation.metadata
    named = meta.model_copy(
        update={"name": meta.name or "evaluation", "namespace": meta.namespace or "default"}
    )
    evaluation = evaluation.model_copy(update={"metadata": named})
    volumes = {
        **parse_volume_mappings([meta.annotations.get(LOCAL_VOLUMES_ANNOTATION, "")], base_dir),
        **parse_volume_mappings(volume_args, Path.cwd()),  # command-line mappings win, relative to the shell
    }
    rendered = task_environment(evaluation, first_step(evaluation.spec.tasks), RenderOptions())
    environment = replace(
        rendered,
        model_uri=localize_uri(rendered.model_uri, volumes, base_dir),
        dataset_uri=localize_uri(rendered.dataset_uri, volumes, base_dir),
        task_count=tasks or rendered.task_count,
        batch_size=batch_size or rendered.batch_size,
        output_uri=None,  # the run's directory, set per run
        evaluation_uid="",  # a local run is no object of the cluster, whatever uid the manifest carries
        # No debug server here: its password would come from a Secret, mounted in the pod.
        debug=False,
        debug_password_file=None,
    )
    return LocalPlan(name=evaluation.name, environment=environment)


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.4f}"
    return "" if value is None else str(value)


def _print_outcome(outcome: LocalOutcome, plan: LocalPlan, fmt: OutputFormat, console: Console) -> None:
    assert outcome.result is not None
    if fmt is OutputFormat.JSON:
        body = {
            "evaluation": plan.name,
            "tasks": plan.tasks,
            "records": outcome.result.records,
            "summary": outcome.result.summary,
            "output": str(outcome.output),
            "seconds": round(outcome.seconds, 3),
        }
        typer.echo(json.dumps(body, indent=2))
        return
    env = plan.environment
    model = f"{env.model_name} {env.model_version}".strip()
    dataset = f"{env.dataset_name} {env.dataset_version}".strip()
    table = Table(title=plan.name, caption=f"{model} on {dataset}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in outcome.result.summary.items():
        table.add_row(key, _format_value(value))
    console.print(table)
    console.print(
        f"{outcome.result.records} records, {plan.tasks} task(s), {outcome.seconds:.1f}s; "
        f"report: {outcome.output / 'report.json'}"
    )


def run(
    filename: Annotated[
        Path,
        typer.Option("-f", "--filename", help="The Evaluation manifest (YAML).", exists=True, dir_okay=False),
    ],
    local: Annotated[bool, typer.Option("--local", help="Run on this machine instead of a cluster.")] = False,
    tasks: Annotated[
        int | None, typer.Option("--tasks", min=1, max=1000, help="Predict shards (default: spec.tasks).")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="Print the summary as a table or as JSON.")
    ] = OutputFormat.TABLE,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", help=f"Predictions, logs and report (default: {DEFAULT_RUNS_DIR}/NAME)."
        ),
    ] = None,
    volume: Annotated[
        list[str] | None,
        typer.Option("-v", "--volume", help="Local directory of a pvc:// claim: CLAIM=DIR (repeatable)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Records per predict call (default: spec.batchSize)."),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", min=1, help="Predict processes at once (default: one per CPU)."),
    ] = None,
) -> None:
    """Run an Evaluation manifest locally with the same runner the pods use, and print its summary.

    Example: assay run -f examples/digits/evaluation.yaml --local --tasks 2 -o json
    """
    from assay.runner.local import LocalRunError

    console = Console(stderr=True)
    if not local:
        console.print("[red]error:[/] assay run needs --local; to run on a cluster use: assay create -f FILE")
        raise typer.Exit(int(ExitCode.INVALID_CONFIG))
    try:
        manifest = read_evaluation_manifest(filename)
        if manifest.get("kind") == "EvaluationSet":
            children = set_children_from_manifest(manifest)
        else:
            children = [manifest]
        plans = [
            plan_from_manifest(child, filename.resolve().parent, volume or [], tasks, batch_size)
            for child in children
        ]
    except LocalRunError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(int(ExitCode.INVALID_CONFIG)) from exc
    if manifest.get("kind") == "EvaluationSet":
        root = (output_dir or DEFAULT_RUNS_DIR / str(manifest["metadata"]["name"])).resolve()
        summaries = {}
        for plan in plans:  # one combination after the other, each with its parallel predict shards
            outcome = _run_one(plan, root / plan.name, parallel, output, console)
            assert outcome.result is not None
            summaries[plan.name] = outcome.result.summary
            env = plan.environment
            console.print(f"{plan.name}: {env.model_name} {env.model_version} on {env.dataset_name} done")
        Console().print(set_view_from_summaries(manifest, summaries))
        return
    (plan,) = plans
    outcome = _run_one(
        plan, (output_dir or DEFAULT_RUNS_DIR / plan.name).resolve(), parallel, output, console
    )
    _print_outcome(outcome, plan, output, Console())


def set_children_from_manifest(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The child Evaluation manifests of an EvaluationSet, one per combination, as the operator makes them."""
    from assay.api import EvaluationSet
    from assay.rollup.evaluation_set import child_evaluation, expand, set_problems
    from assay.runner.local import LocalRunError

    try:
        evaluation_set = EvaluationSet.model_validate(raw)
    except ValidationError as exc:
        raise LocalRunError(f"the manifest is not a valid EvaluationSet: {_problems(exc)}") from exc
    problems = set_problems(evaluation_set.spec)
    if problems:
        raise LocalRunError("; ".join(problems))
    return [child_evaluation(evaluation_set, c) for c in expand(evaluation_set.spec, evaluation_set.name)]


def set_view_from_summaries(raw: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> RenderableType:
    """The set's table (as ``assay get set/NAME`` shows it) from the local runs' summaries."""
    from datetime import UTC, datetime

    from assay.api import EvaluationSet
    from assay.cli.set_views import set_details
    from assay.rollup.evaluation_set import Child, plan_set

    evaluation_set = EvaluationSet.model_validate(raw)
    children = {name: Child(name, "Succeeded", summary=summary) for name, summary in summaries.items()}
    status = plan_set(evaluation_set, children, [], datetime.now(UTC)).status
    return set_details(evaluation_set.model_copy(update={"status": status}))


def _run_one(
    plan: LocalPlan, directory: Path, parallel: int | None, output: OutputFormat, console: Console
) -> LocalOutcome:
    """Run one Evaluation locally with a progress bar; exits with the failed task's code."""
    from assay.runner.local import dataset_size, run_local

    total = dataset_size(plan)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=output is OutputFormat.JSON,
    ) as bar:
        task = bar.add_task(f"{plan.name} predict ({plan.tasks} tasks)", total=total)

        def on_progress(phase: str, done: int) -> None:
            description = f"{plan.name} {phase}" + (f" ({plan.tasks} tasks)" if phase == "predict" else "")
            bar.update(task, completed=done, description=description)

        outcome = run_local(plan, directory, on_progress, parallel)
    if outcome.failure is not None:
        failure = outcome.failure
        console.print(
            f"[red]error:[/] {failure.task} failed: {failure.reason} (exit code {failure.exit_code})"
        )
        console.print(f"  {failure.message}")
        if failure.log_tail:
            console.print(f"[dim]--- end of its log ({directory / 'logs'}) ---[/]")
            console.print(failure.log_tail, markup=False, highlight=False)
        raise typer.Exit(failure.exit_code or int(ExitCode.INTERNAL_ERROR))
    return outcome
