"""``assay ui``: the web console, served on 127.0.0.1 with the user's own kubeconfig."""

from __future__ import annotations

from typing import Annotated

import typer

from assay.cli.options import (
    AllNamespaces,
    AsGroups,
    AsUser,
    Context,
    Kubeconfig,
    Namespace,
    cluster_client,
    fail,
    reports_errors,
)

DEFAULT_PORT = 8765


@reports_errors
def serve_console(
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0: any free port).")
    ] = DEFAULT_PORT,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the console in the web browser.")
    ] = False,
    namespace: Namespace = None,
    all_namespaces: AllNamespaces = False,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    as_user: AsUser = None,
    as_groups: AsGroups = None,
) -> None:
    """Serve the web console: the evaluation list, compare, details, tasks and logs.

    It runs as you: it can read and change exactly what your kubeconfig may. The printed URL carries a
    token for this run; open it (or pass --open) and keep it to yourself.

    Example: assay ui -A --open
    """
    try:
        from assay.console.app import ListScope
        from assay.console.server import serve
    except ImportError as error:
        raise fail(
            f"the console needs its extra ({error.name} is missing): pip install 'assay[console]'"
        ) from None
    with cluster_client(namespace, context, kubeconfig, as_user, as_groups) as client:
        try:
            serve(
                client,
                ListScope(client.namespace, all_namespaces=all_namespaces),
                port=port,
                open_browser=open_browser,
                announce=lambda text: typer.echo(text, err=False),
            )
        except OSError as error:
            raise fail(
                f"cannot serve on 127.0.0.1:{port}: {error.strerror or error} (try --port 0)"
            ) from None
