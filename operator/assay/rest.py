"""GET requests to the Kubernetes API as JSON over urllib3: the SDK's reads, without the kubernetes client.

The client certificate and key go through temporary files (``ssl`` loads a key from a file only), removed as
soon as the TLS context has read them.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import urllib3

from assay.kubeconfig import Connection


class ApiError(Exception):
    """The API server's answer to a failed request: ``status``, ``reason`` and ``body`` as the kubernetes
    client's ``ApiException`` has them, so one translation serves both."""

    def __init__(self, status: int, reason: str | None, body: str | None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


def _tls_context(connection: Connection) -> ssl.SSLContext:
    context = (
        ssl.create_default_context(cadata=connection.ca_pem)
        if connection.ca_pem
        else (ssl.create_default_context())
    )
    if not connection.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if connection.client_cert_pem and connection.client_key_pem:
        with tempfile.TemporaryDirectory(prefix="assay-tls-") as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            for path, text in ((cert, connection.client_cert_pem), (key, connection.client_key_pem)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as file:
                    file.write(text)
            context.load_cert_chain(cert, key)
    return context


class RestReader:
    """GET JSON from one API server as one user; ``extra_headers`` are sent with every request (one line
    each: the API server reads one ``Impersonate-Group`` header per group)."""

    def __init__(
        self, connection: Connection, *, timeout: float, extra_headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.server = connection.server
        self._headers = urllib3.HTTPHeaderDict({"Accept": "application/json", **connection.headers})
        for name, value in extra_headers:
            self._headers.add(name, value)
        pool_options: dict[str, Any] = {}
        if self.server.startswith("https:"):
            pool_options["ssl_context"] = _tls_context(connection)
            if not connection.verify:
                pool_options["assert_hostname"] = False
        # Fail fast when the API server is down: one retry, as the SDK's kubernetes client is configured.
        self._pool = urllib3.PoolManager(
            retries=urllib3.Retry(1), timeout=urllib3.Timeout(total=timeout), **pool_options
        )

    def get(self, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The decoded JSON object at ``path``; :class:`ApiError` for any answer but 2xx."""
        url = self.server + path + (f"?{urlencode(query)}" if query else "")
        response = self._pool.request("GET", url, headers=self._headers)
        body = response.data.decode("utf-8", errors="replace")
        if not 200 <= response.status < 300:
            raise ApiError(response.status, response.reason, body)
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ApiError(response.status, "not a JSON object", body)
        return data

    def close(self) -> None:
        self._pool.clear()
