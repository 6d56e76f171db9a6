"""``assay ui``: bind 127.0.0.1, build the app on the user's own client, print the URL, serve until Ctrl-C."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable

import uvicorn

from assay.console.app import ConsoleClient, ListScope, create_app
from assay.console.guard import TOKEN_PARAMETER, new_token

LOOPBACK = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """The listening socket, bound before the URL is printed (port 0 picks a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def served_hosts(port: int) -> set[str]:
    return {f"{LOOPBACK}:{port}", f"localhost:{port}"}


def serve(
    client: ConsoleClient,
    scope: ListScope,
    *,
    port: int,
    open_browser: bool,
    announce: Callable[[str], None],
) -> None:
    sock = bind(port)
    port = sock.getsockname()[1]
    token = new_token()
    # One cookie name per port: cookies do not tell ports apart, and two consoles may run side by side.
    app = create_app(client, scope, token=token, hosts=served_hosts(port), cookie=f"assay-console-{port}")
    url = f"http://{LOOPBACK}:{port}/?{TOKEN_PARAMETER}={token}"
    announce(f"Assay console on {scope.label}, as {client.source}:\n    {url}\nCtrl-C stops it.")
    if open_browser:
        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
