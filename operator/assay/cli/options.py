"""Options every cluster command shares (kubectl's names and meanings), printing and error reporting."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.measure import Measurement

from assay.cli import views
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


@dataclasses.dataclass(frozen=True)
class KubectlFlags:
    """kubectl's flags that say which cluster and as whom: --context, --kubeconfig, --as, --as-group."""

    context: str | None = None
    kubeconfig: Path | None = None
    as_user: str | None = None
    as_groups: list[str] | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> KubectlFlags:
        """The flags among a command's parsed parameters (click's ``ctx.params``, in shell completion)."""
        return cls(**{name: params.get(name) for name in _KUBECTL_OPTIONS})

    def client(self, namespace: str | None) -> Client:
        """The SDK client of a command on ``namespace`` (None: the context's)."""
        # Imported here: the kubernetes client is the slowest import, and --help or --version do without it.
        from assay.client import Client

        return Client(
            self.kubeconfig,
            self.context,
            namespace,
            impersonate=self.as_user,
            impersonate_groups=self.as_groups or (),
        )


# Each field of KubectlFlags as the command-line option typer makes of it.
_KUBECTL_OPTIONS: dict[str, object] = {
    "context": Context,
    "kubeconfig": Kubeconfig,
    "as_user": AsUser,
    "as_groups": AsGroups,
}


def takes_kubectl_flags(command: Callable[..., R]) -> Callable[..., R]:
    """Give a command kubectl's --context, --kubeconfig, --as and --as-group in place of its keyword-only
    parameter ``kubectl: KubectlFlags``: typer reads the four options from the signature, and the command
    gets them as one object (a caller in Python may pass ``kubectl=`` itself)."""
    signature = inspect.signature(command, eval_str=True)  # typer wants the annotations, not their text
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "kubectl":
            parameters.append(parameter)
            continue
        parameters.extend(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
            for name, option in _KUBECTL_OPTIONS.items()
        )
    if len(parameters) == len(signature.parameters):
        raise TypeError(f"{command.__name__} has no parameter kubectl: KubectlFlags")

    @functools.wraps(command)
    def with_flags(*args: Any, **kwargs: Any) -> R:
        options = {name: kwargs.pop(name) for name in _KUBECTL_OPTIONS if name in kwargs}
        kwargs.setdefault("kubectl", KubectlFlags(**options))
        return command(*args, **kwargs)

    # What typer reads: inspect.signature() honours __signature__, typing.get_type_hints() __annotations__.
    with_flags.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]  # see above
    with_flags.__annotations__ = {p.name: p.annotation for p in parameters}
    with_flags.__annotations__["return"] = signature.return_annotation
    return with_flags


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


def print_objects(
    output: views.ListFormat,
    *,
    api_data: Callable[[], object],
    names: Iterable[str],
    tables: Callable[[], Iterable[RenderableType]],
    nothing: str | None = None,
) -> None:
    """Print what a command found as ``-o`` asks: its API data (json, yaml), kubectl's names, one a line
    (name), or its tables (table, wide). ``nothing``, when given, goes to stderr in place of the tables."""
    out = console()
    if output in (views.ListFormat.JSON, views.ListFormat.YAML):
        out.out(views.dump(api_data(), output), end="")
    elif output is views.ListFormat.NAME:
        for name in names:
            out.out(name)
    elif nothing is not None:
        typer.echo(nothing, err=True)
    else:
        for table in tables():
            show(out, table)


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
