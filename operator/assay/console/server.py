"""``assay ui``: bind the address, build the app on the user's own client, print the URL, serve until Ctrl-C.

On a laptop it listens on 127.0.0.1 with a fresh token per run. In a pod (``--address 0.0.0.0``) it is
reached through ``kubectl port-forward``, so the browser's Host is still ``localhost:PORT``; the token then
comes from a file (a mounted Secret) and is never printed, since pod logs are read by more people.
"""

from __future__ import annotations

import ipaddress
import socket
import webbrowser
from collections.abc import Callable, Collection

import uvicorn

from assay.console.app import ConsoleClient, ListScope, create_app
from assay.console.guard import TOKEN_PARAMETER, new_token

LOOPBACK = "127.0.0.1"


def bind(port: int, address: str = LOOPBACK) -> socket.socket:
    """The listening socket, bound before the URL is printed (port 0 picks a free port)."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def served_hosts(port: int, extra: Collection[str] = ()) -> set[str]:
    """The Host headers answered: the loopback names (what a port-forward's browser sends) and ``extra``."""
    return {f"{LOOPBACK}:{port}", f"localhost:{port}", *extra}


def serve(
    client: ConsoleClient,
    scope: ListScope,
    *,
    port: int,
    open_browser: bool,
    announce: Callable[[str], None],
    address: str = LOOPBACK,
    token: str | None = None,
    hosts: Collection[str] = (),
    read_only: bool = False,
) -> None:
    """Serve until stopped. ``token``: a fixed token (from ``--token-file``), else a new one, printed."""
    sock = bind(port, address)
    port = sock.getsockname()[1]
    secret = token or new_token()
    # One cookie name per port: cookies do not tell ports apart, and two consoles may run side by side.
    app = create_app(
        client,
        scope,
        token=secret,
        hosts=served_hosts(port, hosts),
        cookie=f"assay-console-{port}",
        read_only=read_only,
    )
    shown = "<the token in --token-file>" if token else secret
    url = f"http://{LOOPBACK}:{port}/?{TOKEN_PARAMETER}={shown}"
    mode = ", read-only" if read_only else ""
    where = "" if address == LOOPBACK else f" (listening on {address}:{port})"
    announce(f"Assay console on {scope.label}, as {client.source}{mode}{where}:\n    {url}\nCtrl-C stops it.")
    if open_browser:
        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
