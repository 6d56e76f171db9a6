"""``assay ui``: the web console, served on 127.0.0.1 with the user's own kubeconfig."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli.options import (
    AllNamespaces,
    KubectlFlags,
    Namespace,
    fail,
    reports_errors,
    takes_kubectl_flags,
)

DEFAULT_PORT = 8765
MIN_TOKEN_LENGTH = 16


def read_token(path: Path) -> str:
    """The token in ``path`` (a mounted Secret), refused when it is too short to stand for a password."""
    try:
        token = path.read_text().strip()
    except OSError as error:
        raise fail(f"cannot read --token-file {path}: {error.strerror or error}") from None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise fail(f"--token-file {path} must hold one word of at least {MIN_TOKEN_LENGTH} characters")
    return token


@reports_errors
@takes_kubectl_flags
def serve_console(
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0: any free port).")
    ] = DEFAULT_PORT,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the console in the web browser.")
    ] = False,
    address: Annotated[
        str,
        typer.Option(
            "--address",
            help="Address to listen on; 0.0.0.0 in a pod, reached with kubectl port-forward.",
        ),
    ] = "127.0.0.1",
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Hide create, cancel, suspend and resume.")
    ] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Read the token from this file (a mounted Secret) instead of making one; it is not printed.",
            show_default=False,
        ),
    ] = None,
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Also answer this Host header (host:port), e.g. behind an ingress.",
            show_default=False,
        ),
    ] = None,
    namespace: Namespace = None,
    all_namespaces: AllNamespaces = False,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Serve the web console: the evaluation list, compare, details, tasks and logs.

    It runs as you: it can read and change exactly what your kubeconfig may. The printed URL carries a
    token for this run; open it (or pass --open) and keep it to yourself. In a pod it runs as its service
    account, read-only: see manifests/components/console.

    Example: assay ui -A --open
    """
    try:
        from assay.console.app import ListScope
        from assay.console.server import serve
    except ImportError as error:
        raise fail(
            f"the console needs its extra ({error.name} is missing): pip install 'assay[console]'"
        ) from None
    token = read_token(token_file) if token_file is not None else None
    with kubectl.client(namespace) as client:
        try:
            serve(
                client,
                ListScope(client.namespace, all_namespaces=all_namespaces),
                port=port,
                open_browser=open_browser,
                announce=lambda text: typer.echo(text, err=False),
                address=address,
                token=token,
                hosts=allowed_hosts or (),
                read_only=read_only,
            )
        except ValueError:
            raise fail(f"--address {address} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)") from None
        except OSError as error:
            raise fail(
                f"cannot serve on {address}:{port}: {error.strerror or error} (try --port 0)"
            ) from None
