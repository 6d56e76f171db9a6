"""Options every cluster command shares (kubectl's names and meanings), and error reporting."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.measure import Measurement

from assay.errors import AssayError

if TYPE_CHECKING:
    from assay.client import Client

P = ParamSpec("P")
R = TypeVar("R")

Namespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace (default: the kubeconfig context's namespace).",
        show_default=False,
    ),
]
AllNamespaces = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="List across all namespaces.", show_default=False)
]
Selector = Annotated[
    str | None,
    typer.Option(
        "--selector", "-l", help="Label selector, e.g. -l team=vision,stage!=dev.", show_default=False
    ),
]
Context = Annotated[
    str | None, typer.Option("--context", help="Kubeconfig context to use.", show_default=False)
]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod: its service account).",
        show_default=False,
    ),
]

AsUser = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="<user>",
        help="Username to impersonate for the operation (a user, or system:serviceaccount:NS:NAME).",
        show_default=False,
    ),
]
AsGroups = Annotated[
    list[str] | None,
    typer.Option(
        "--as-group",
        metavar="<group>",
        help="Group to impersonate for the operation; repeat for several groups. Needs --as.",
        show_default=False,
    ),
]


def cluster_client(
    namespace: str | None,
    context: str | None,
    kubeconfig: Path | None,
    as_user: str | None,
    as_groups: list[str] | None,
) -> Client:
    """The SDK client of a command, from kubectl's flags."""
    # Imported here: the kubernetes client is the slowest import, and --help or --version do without it.
    from assay.client import Client

    return Client(kubeconfig, context, namespace, impersonate=as_user, impersonate_groups=as_groups or ())


def console() -> Console:
    """A console on stdout: colour only on a terminal (and never with NO_COLOR); outside a terminal no
    width limit, so pipes and files get whole lines."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=int(os.environ.get("COLUMNS", "0")) or 1000, no_color=True)
    return out


def show(out: Console, renderable: RenderableType) -> None:
    """Print at the renderable's natural width, as kubectl does: a table wider than the terminal runs over
    its edge instead of having its cells cut to "…"."""
    natural = Measurement.get(out, out.options.update(max_width=100_000), renderable).maximum
    width = out.width
    out.width = max(width, natural)  # print(width=...) is capped at the console's width; this is not
    try:
        out.print(renderable, crop=False)
    finally:
        out.width = width


def error_console() -> Console:
    return Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    error_console().print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn SDK errors into one line on stderr and the error's exit code (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AssayError as error:
            # One line, always: a server message may carry newlines (CEL rule messages, for one).
            one_line = "; ".join(part.strip() for part in str(error).splitlines() if part.strip())
            raise fail(_escape(one_line), error.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # `assay logs x | head`: the reader left; nothing to report.
            sys.stderr.close()
            raise typer.Exit(0) from None

    return wrapper


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
