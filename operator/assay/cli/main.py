"""The ``assay`` command: the typer application every subcommand registers on.

Console scripts ``assay`` and ``kubectl-assay`` both point at :data:`app`. Commands written elsewhere
(``assay run`` in :mod:`assay.cli.run`) register themselves with ``app.command(...)`` at the bottom of this
module, so one import of ``assay.cli.main`` yields the whole command tree.
"""

from __future__ import annotations

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

app.command("list", no_args_is_help=False)(commands.list_evaluations)
app.command("get", no_args_is_help=True)(commands.get_evaluation)
app.command("tasks", no_args_is_help=True)(commands.list_tasks)
app.command("logs", no_args_is_help=True)(commands.show_logs)
app.command("compare", no_args_is_help=True)(commands.compare_evaluations)
app.command("create", no_args_is_help=True)(commands.create_evaluations)
app.command("cancel", no_args_is_help=True)(commands.cancel_evaluation)
app.command("suspend", no_args_is_help=True)(commands.suspend_evaluation)
app.command("resume", no_args_is_help=True)(commands.resume_evaluation)
app.command("wait", no_args_is_help=True)(commands.wait_for_evaluation)
app.command("pools")(commands.list_pools)

# --- commands defined in other modules ------------------------------------------------------------------
# (kept at the bottom so the modules above are complete when they import `app`)
from assay.cli.run import run as _run_local  # noqa: E402

app.command("run")(_run_local)
