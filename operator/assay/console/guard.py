"""Who may drive the console: the holder of the per-run token, through an expected Host (ASGI middleware).

As Jupyter does: ``assay ui`` prints a URL carrying a random token; opening it sets a cookie and redirects to
the same URL without the token, so it stays out of the history. Every other request needs that cookie:
another local user does not have it, and a hostile web page cannot send it (``SameSite=Strict``). A Host
header other than the served address is refused, which defeats DNS rebinding; a state-changing request from
another origin is refused too.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_PARAMETER = "token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TokenGuard:
    def __init__(self, app: ASGIApp, *, token: str, hosts: Collection[str], cookie: str) -> None:
        self.app = app
        self.token = token
        self.hosts = frozenset(hosts)
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if host not in self.hosts:
            return PlainTextResponse(
                f"refused: this console answers only on {', '.join(sorted(self.hosts))}", 403
            )
        given = request.query_params.get(TOKEN_PARAMETER)
        if given is not None:
            if not secrets.compare_digest(given, self.token):
                return _forbidden()
            clean = URL(str(request.url)).remove_query_params(TOKEN_PARAMETER)
            redirect = RedirectResponse(clean.path + (f"?{clean.query}" if clean.query else ""), 303)
            redirect.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
            return redirect
        if not secrets.compare_digest(request.cookies.get(self.cookie, ""), self.token):
            return _forbidden()
        origin = request.headers.get("origin")
        if (
            request.method not in SAFE_METHODS
            and origin is not None
            and origin.removeprefix("http://").removeprefix("https://") not in self.hosts
        ):
            return PlainTextResponse("refused: a request from another site", 403)
        return None


def _forbidden() -> Response:
    return PlainTextResponse(
        "forbidden: open the console with the URL `assay ui` printed (it carries this run's token)", 403
    )
