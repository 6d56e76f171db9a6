"""The ``assay`` command: the typer application every subcommand registers on.

Console scripts ``assay`` and ``kubectl-assay`` both point at :data:`app`. Commands written elsewhere
(``assay run`` in :mod:`assay.cli.run`) register themselves with ``app.command(...)`` at the bottom of this
module, so one import of ``assay.cli.main`` yields the whole command tree.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import typer

from assay import __version__
from assay.cli import commands

app = typer.Typer(
    name="assay",
    help=(
        "Model evaluations on Kubernetes: list, inspect, compare and control Evaluation objects.\n\n"
        "Example: assay list -A"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"assay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Model evaluations on Kubernetes."""


# --- cluster commands (assay.cli.commands) ----------------------------------------------------------------


def _help(command: Callable[..., object]) -> str:
    """The command's docstring with each paragraph on one line: rich help keeps the source's line breaks,
    and the terminal should do the wrapping."""
    text = inspect.cleandoc(command.__doc__ or "")
    return "\n\n".join(" ".join(paragraph.split("\n")) for paragraph in text.split("\n\n"))


for _name, _command, _needs_args in (
    ("list", commands.list_evaluations, False),
    ("get", commands.get_evaluation, True),
    ("tasks", commands.list_tasks, True),
    ("logs", commands.show_logs, True),
    ("compare", commands.compare_evaluations, True),
    ("create", commands.create_evaluations, True),
    ("cancel", commands.cancel_evaluation, True),
    ("suspend", commands.suspend_evaluation, True),
    ("resume", commands.resume_evaluation, True),
    ("wait", commands.wait_for_evaluation, True),
    ("pools", commands.list_pools, False),
    ("budgets", commands.list_budgets, False),
    ("sets", commands.list_sets, False),
    ("set", commands.show_set, True),
):
    app.command(_name, help=_help(_command), no_args_is_help=_needs_args)(_command)

# --- commands defined in other modules ------------------------------------------------------------------
# (kept at the bottom so the modules above are complete when they import `app`)
from assay.cli.run import run as _run_local  # noqa: E402

app.command("run")(_run_local)

from assay.cli.ui import serve_console as _serve_console  # noqa: E402

app.command("ui", help=_help(_serve_console))(_serve_console)

from assay.cli.results import show_results as _show_results  # noqa: E402

app.command("results", help=_help(_show_results))(_show_results)
