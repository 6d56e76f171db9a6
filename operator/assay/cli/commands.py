"""The cluster commands of ``assay``: each builds a :class:`assay.Client`, calls it, and prints a view.

Registered on the app in :mod:`assay.cli.main`. Every docstring ends with an example, which ``--help`` shows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assay.api import GROUP
from assay.attempts import select_attempts, single_attempt
from assay.cli import set_views, views
from assay.cli.options import (
    AllNamespaces,
    KubectlFlags,
    Namespace,
    Selector,
    console,
    error_console,
    fail,
    print_objects,
    reports_errors,
    show,
    takes_kubectl_flags,
)
from assay.contract import Step
from assay.errors import AssayError, Invalid
from assay.quote import quote_text

if TYPE_CHECKING:
    from assay.api import Evaluation
    from assay.client import Client

ListOutput = Annotated[
    views.ListFormat,
    typer.Option("--output", "-o", help="Output format.", case_sensitive=False),
]
CompareOutput = Annotated[
    views.CompareFormat,
    typer.Option("--output", "-o", help="Output format.", case_sensitive=False),
]


def _complete_evaluation(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of evaluation names; silent when the cluster is not reachable."""
    params = ctx.params
    try:
        with KubectlFlags.from_params(params).client(params.get("namespace")) as client:
            return [e.name for e in client.list() if e.name.startswith(incomplete)]
    except (AssayError, OSError):
        return []


EvaluationName = Annotated[
    str,
    typer.Argument(help="Name of the evaluation.", autocompletion=_complete_evaluation, show_default=False),
]


def _now() -> datetime:
    return datetime.now(UTC)


@reports_errors
@takes_kubectl_flags
def list_evaluations(
    namespace: Namespace = None,
    all_namespaces: AllNamespaces = False,
    selector: Selector = None,
    pool: Annotated[
        str | None, typer.Option(help="Only evaluations in this pool.", show_default=False)
    ] = None,
    phase: Annotated[
        str | None, typer.Option(help="Only evaluations in this phase, e.g. Running.", show_default=False)
    ] = None,
    output: ListOutput = views.ListFormat.TABLE,
    *,
    kubectl: KubectlFlags,
) -> None:
    """List evaluations, newest first: pool, phase, tasks done/total, headline metric, cost, age.

    Example: assay list -A --phase Running -o wide
    """
    with kubectl.client(namespace) as client:
        evaluations = client.list(all_namespaces=all_namespaces, selector=selector, pool=pool, phase=phase)
    where = "any namespace" if all_namespaces else f"namespace {client.namespace}"
    wide = output is views.ListFormat.WIDE
    print_objects(
        output,
        api_data=lambda: views.as_api_data(evaluations, single=False),
        names=map(views.object_name, evaluations),
        tables=lambda: [
            views.evaluations_table(evaluations, wide=wide, all_namespaces=all_namespaces, now=_now())
        ],
        nothing=None if evaluations else f"No evaluations found in {where}.",
    )


@reports_errors
@takes_kubectl_flags
def get_evaluation(
    name: EvaluationName,
    namespace: Namespace = None,
    output: ListOutput = views.ListFormat.TABLE,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Show one evaluation in detail.

    Spec at a glance, sys/* facts, summary metrics, where the detailed results are, conditions, and for
    debug mode how to connect (never the password).

    Example: assay get mnist-cnn-v3-on-test -n team-a  (assay get set/NAME shows an EvaluationSet)
    """
    kind, _, set_name = name.partition("/")
    if set_name and kind in ("set", "evalset", "evaluationset"):
        show_set(set_name, namespace, output, kubectl=kubectl)
        return
    with kubectl.client(namespace) as client:
        evaluation = client.get(name)
    print_objects(
        output,
        api_data=lambda: views.as_api_data([evaluation], single=True),
        names=[views.object_name(evaluation)],
        tables=lambda: [views.evaluation_details(evaluation, now=_now())],
    )


@reports_errors
@takes_kubectl_flags
def list_tasks(
    name: EvaluationName,
    namespace: Namespace = None,
    output: ListOutput = views.ListFormat.TABLE,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Every task and attempt of an evaluation.

    Columns: step, index, attempt, phase, node, start, duration, exit code, reason (-o wide adds the pod).
    Earlier attempts show while their pods exist.

    Example: assay tasks mnist-cnn-v3-on-test -o wide
    """
    with kubectl.client(namespace) as client:
        tasks = client.tasks(name)
        attempts = client.attempts(name)
    rows = views.task_rows(tasks, attempts, now=_now())
    print_objects(
        output,
        api_data=lambda: {"tasks": [t.to_api() for t in tasks], "attempts": [a.to_api() for a in attempts]},
        names=(f"pod/{attempt.pod}" for attempt in attempts),
        tables=lambda: [views.tasks_table(rows, wide=output is views.ListFormat.WIDE)],
        nothing=None if rows else f"Evaluation {name} has no tasks yet.",
    )


@reports_errors
@takes_kubectl_flags
def show_logs(
    name: EvaluationName,
    task: Annotated[
        int | None, typer.Option("--task", "-t", help="Task index (default: every task).", show_default=False)
    ] = None,
    step: Annotated[
        Step | None,
        typer.Option("--step", "-s", help="Step: predict, evaluate (or all).", show_default=False),
    ] = None,
    attempt: Annotated[
        int | None,
        typer.Option(
            "--attempt", help="Attempt number, 1 = first (default: the latest).", show_default=False
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream the log until the task ends.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", help="Only the last N lines of each log.", show_default=False)
    ] = None,
    namespace: Namespace = None,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Print the logs of an evaluation's tasks.

    Without options: the latest attempt of every task, each under a header. --step, --task and --attempt pick
    one; earlier attempts stay readable while their pods exist. --task N alone means predict task N.

    Example: assay logs mnist-cnn-v3-on-test --step predict --task 1 --attempt 1
    """
    step_name = step.value if step is not None else None
    with kubectl.client(namespace) as client:
        attempts = client.attempts(name)
        if task is not None and step_name is None and any(a.step == Step.PREDICT for a in attempts):
            step_name = Step.PREDICT.value  # --task N alone means predict task N (evaluate has only 0)
        chosen = select_attempts(attempts, step=step_name, task=task, attempt=attempt)
        if follow:
            one = single_attempt(chosen)
            for chunk in client.stream_attempt_logs(one):
                sys.stdout.write(chunk)
                sys.stdout.flush()
            return
        for position, one in enumerate(chosen):
            if len(chosen) > 1:
                if position:
                    sys.stdout.write("\n")
                sys.stdout.write(f"==> {one.task} attempt {one.attempt} (pod {one.pod}) <==\n")
            text = client.attempt_logs(one, tail_lines=tail)
            sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
        sys.stdout.flush()


@reports_errors
@takes_kubectl_flags
def compare_evaluations(
    names: Annotated[
        list[str] | None, typer.Argument(help="Evaluations to compare.", show_default=False)
    ] = None,
    set_name: Annotated[
        str | None,
        typer.Option("--set", help="Compare the children of this EvaluationSet.", show_default=False),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline", "-b", help="Evaluation to compare against (default: the first).", show_default=False
        ),
    ] = None,
    only_diff: Annotated[
        bool, typer.Option("--only-diff", help="Hide rows whose values are equal across all evaluations.")
    ] = False,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            help="Comma-separated metrics or sys/* fields to show, in this order.",
            show_default=False,
        ),
    ] = None,
    output: CompareOutput = views.CompareFormat.TABLE,
    namespace: Namespace = None,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Compare evaluations side by side against a baseline.

    One row per metric and sys/* field, one column per evaluation, the baseline first; every other value
    shows a rising/falling mark and its delta. Evaluations still running are marked in the header.
    A metric an evaluation lacks is an empty cell. --columns takes metric names and sys/* facts: sys/id,
    sys/model, sys/model_version, sys/dataset, sys/dataset_version, sys/runtime, sys/runtime_version,
    sys/pool, sys/phase, sys/tasks, sys/records, sys/cost, sys/created, sys/finished, sys/duration, sys/debug.

    Example: assay compare cnn-v3 cnn-v4 mlp-v1 --baseline cnn-v3 --only-diff --columns accuracy,sys/duration
    (or assay compare --set digits-matrix: the set's children, against its baseline)
    """
    picked = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if bool(names) == bool(set_name):
        raise fail("name the evaluations to compare, or give --set NAME (not both)")
    with kubectl.client(namespace) as client:
        if set_name:
            comparison = client.compare_set(set_name, baseline=baseline, only_diff=only_diff, columns=picked)
        else:
            comparison = client.compare(names or [], baseline=baseline, only_diff=only_diff, columns=picked)
    out = console()
    if output is views.CompareFormat.TABLE:
        if not comparison.rows:
            typer.echo("No differences." if only_diff else "Nothing to compare.", err=True)
            return
        show(out, views.comparison_table(comparison))
    else:
        out.out(views.comparison_text(comparison, output), end="")


@reports_errors
@takes_kubectl_flags
def create_evaluations(
    filename: Annotated[
        Path,
        typer.Option("--filename", "-f", help="YAML or JSON manifest; - reads stdin.", show_default=False),
    ],
    namespace: Namespace = None,
    output: Annotated[
        views.ListFormat | None,
        typer.Option(
            "--output", "-o", help="Print the created objects (json, yaml or name).", show_default=False
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Create without asking (after printing the price).")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check with the cluster (admission included) and print the price only."
        ),
    ] = False,
    debug_password_file: Annotated[
        Path | None,
        typer.Option(
            "--debug-password-file",
            help="Debug mode behind the password in this file (its first line), kept in a Secret the "
            "evaluation owns; without it, debug mode gets a generated password.",
            show_default=False,
        ),
    ] = None,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Create the evaluations in a manifest file, after showing what they cost.

    Each evaluation is first checked by a server-side dry run, so the admission webhook's refusal shows
    before anything is created; then the price per hour and the most it can cost (the estimatedMax the
    operator will write) are printed on stderr. On a terminal it asks before creating (--yes skips the
    question); without a terminal (scripts, CI) it creates without asking. --dry-run stops after the price.

    Example: assay create -f examples/digits/evaluation.yaml -n team-a
    (debug mode with a password of your own: --debug-password-file pw.txt)
    """
    from assay.client import load_manifests  # the kubernetes client loads only for cluster commands

    manifests = load_manifests(filename)
    password = _first_line(debug_password_file) if debug_password_file is not None else None
    with kubectl.client(namespace) as client:
        checked = [client.create(doc, namespace, dry_run=True, debug_password=password) for doc in manifests]
        for evaluation in checked:
            error_console().print(
                f"{views.object_name(evaluation)}: {_price_of(client, evaluation)}", soft_wrap=True
            )
        if dry_run:
            for evaluation in checked:
                console().out(f"{views.object_name(evaluation)} checked (dry run): nothing created")
            return
        if not yes and on_a_terminal():
            count = len(checked)
            typer.confirm(f"Create {count} evaluation{'s' if count != 1 else ''}?", abort=True, err=True)
        created = [client.create(doc, namespace, debug_password=password) for doc in manifests]
    out = console()
    if output in (views.ListFormat.JSON, views.ListFormat.YAML):
        out.out(views.dump(views.as_api_data(created, single=True), output), end="")
        return
    for evaluation in created:
        out.out(views.object_name(evaluation) + ("" if output is views.ListFormat.NAME else " created"))


def _first_line(path: Path) -> str:
    """A password file's first line, without its line end (as `echo ... > FILE` writes it)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise Invalid(f"cannot read the debug password file {path}: {error.strerror}") from error
    return text.splitlines()[0] if text else ""


def on_a_terminal() -> bool:
    """Whether someone can answer a question: stdin and stderr are a terminal."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _price_of(client: Client, evaluation: Evaluation) -> str:
    """The quote as one line; a pool the user may not read leaves the price unknown, not the create."""
    try:
        return quote_text(client.quote(evaluation))
    except AssayError as error:
        return f"price unknown ({error})"


def _flag_command(verb: str, help_text: str) -> Callable[..., None]:
    """The command that sets or clears one of an evaluation's spec flags through ``Client.<verb>``."""
    past_tense = {"cancel": "cancelled", "suspend": "suspended", "resume": "resumed"}[verb]

    @reports_errors
    @takes_kubectl_flags
    def command(name: EvaluationName, namespace: Namespace = None, *, kubectl: KubectlFlags) -> None:
        with kubectl.client(namespace) as client:
            evaluation = getattr(client, verb)(name)
        console().out(f"{views.object_name(evaluation)} {past_tense}")

    command.__doc__ = help_text
    return command


cancel_evaluation = _flag_command(
    "cancel",
    """Cancel an evaluation for good (sets spec.cancel): its tasks stop, the record and results stay.

    Example: assay cancel mnist-cnn-v3-on-test
    """,
)
suspend_evaluation = _flag_command(
    "suspend",
    """Suspend an evaluation (sets spec.suspend): its tasks stop until `assay resume`.

    Example: assay suspend mnist-cnn-v3-on-test
    """,
)
resume_evaluation = _flag_command(
    "resume",
    """Resume a suspended evaluation (clears spec.suspend).

    Example: assay resume mnist-cnn-v3-on-test
    """,
)


@reports_errors
@takes_kubectl_flags
def wait_for_evaluation(
    name: EvaluationName,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Give up after this many seconds.", show_default=False)
    ] = None,
    namespace: Namespace = None,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Wait until an evaluation ends (Succeeded, Failed, Cancelled, Expired); exit 0 only if it succeeded.

    Example: assay wait mnist-cnn-v3-on-test --timeout 600 && assay get mnist-cnn-v3-on-test
    """
    with kubectl.client(namespace) as client:
        done = client.wait(name, timeout=timeout)
    phase = done.status.phase.value if done.status.phase is not None else "Pending"
    console().out(f"{views.object_name(done)} {phase}")
    if phase != "Succeeded":
        raise fail(f"evaluation {name} ended {phase}: {done.status.message or 'see assay get ' + name}")


@reports_errors
@takes_kubectl_flags
def list_pools(
    output: ListOutput = views.ListFormat.TABLE,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", hidden=True, help="Ignored: pools belong to no namespace."),
    ] = None,
    *,
    kubectl: KubectlFlags,
) -> None:
    """List resource pools: nodes, capacity, in use, quota, running and queued evaluations, price per hour.

    Example: assay pools -o wide
    """
    with kubectl.client(None) as client:
        pools = client.pools()
    print_objects(
        output,
        api_data=lambda: views.as_api_data(pools, single=False),
        names=map(views.object_name, pools),
        tables=lambda: [views.pools_table(pools, wide=output is views.ListFormat.WIDE)],
        nothing=None if pools else "No resource pools found.",
    )


@reports_errors
@takes_kubectl_flags
def list_budgets(
    output: ListOutput = views.ListFormat.TABLE,
    *,
    kubectl: KubectlFlags,
) -> None:
    """List the pools' budgets: state, spent, committed and remaining in the current window, the limit,
    evaluations waiting for money, and the window.

    Example: assay budgets
    """
    with kubectl.client(None) as client:
        pools = [pool for pool in client.pools() if pool.spec.budgets]
    print_objects(
        output,
        api_data=lambda: [
            {"pool": pool.name, **status.to_api()} for pool in pools for status in pool.status.budgets
        ],
        names=(f"{pool.name}/{budget.name}" for pool in pools for budget in pool.spec.budgets),
        tables=lambda: [views.budgets_table(pools)],
        nothing=None if pools else "No budgets found.",
    )


# --- EvaluationSets -------------------------------------------------------------------------------------


@reports_errors
@takes_kubectl_flags
def list_sets(
    namespace: Namespace = None,
    all_namespaces: AllNamespaces = False,
    output: ListOutput = views.ListFormat.TABLE,
    *,
    kubectl: KubectlFlags,
) -> None:
    """List evaluation sets, newest first: phase, children succeeded / combinations, best, cost, age.

    Example: assay sets -n team-a (or -A: every namespace)
    """
    with kubectl.client(namespace) as client:
        found = client.sets(all_namespaces=all_namespaces)
    where = "any namespace" if all_namespaces else f"namespace {client.namespace}"
    print_objects(
        output,
        api_data=lambda: {"items": [s.to_api() for s in found]},
        names=(f"evaluationset.{GROUP}/{evaluation_set.name}" for evaluation_set in found),
        tables=lambda: [set_views.sets_table(found, all_namespaces=all_namespaces, now=_now())],
        nothing=None if found else f"No evaluation sets found in {where}.",
    )


@reports_errors
@takes_kubectl_flags
def show_set(
    name: Annotated[str, typer.Argument(help="Name of the evaluation set.", show_default=False)],
    namespace: Namespace = None,
    output: ListOutput = views.ListFormat.TABLE,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Show one evaluation set: phase, counts, cost, best, and its table (datasets x models, deltas
    against the baseline).

    Example: assay set digits-matrix
    """
    with kubectl.client(namespace) as client:
        evaluation_set = client.evaluation_set(name)
    print_objects(
        output,
        api_data=evaluation_set.to_api,
        names=[f"evaluationset.{GROUP}/{evaluation_set.name}"],
        tables=lambda: [
            set_views.sets_table([evaluation_set], now=_now()),
            set_views.set_details(evaluation_set),
        ],
    )
