"""GET requests to the Kubernetes API as JSON: the SDK's reads, without the kubernetes client.

Over the standard library's ``http.client`` (urllib3 alone takes longer to import than it and ``ssl``
together): one connection per reader, opened on first use, one retry when it fails to connect or drops, as
the SDK's kubernetes client is configured. The client certificate and key go through temporary files
(``ssl`` loads a key from a file only), removed as soon as the TLS context has read them.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from assay.kubeconfig import Connection


class ApiError(Exception):
    """The API server's answer to a failed request: ``status``, ``reason`` and ``body`` as the kubernetes
    client's ``ApiException`` has them, so one translation serves both."""

    def __init__(self, status: int, reason: str | None, body: str | None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


class Unreachable(OSError):
    """No answer from the API server (refused, timed out, dropped); ``reason`` is the last error."""

    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


def _tls_context(connection: Connection) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=connection.ca_pem or None)
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
        url = urlsplit(connection.server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"the server {connection.server!r} is not an http(s) URL")
        self._host, self._port = url.hostname, url.port
        self._prefix = url.path.rstrip("/")  # a server behind a path (https://proxy/k8s/clusters/x)
        self._tls = _tls_context(connection) if url.scheme == "https" else None
        self._timeout = timeout
        self._headers = [("Accept", "application/json"), *connection.headers.items(), *extra_headers]
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def get(self, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The decoded JSON object at ``path``; :class:`ApiError` for any answer but 2xx, :class:`Unreachable`
        when the server does not answer (after one retry)."""
        target = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        for attempt in (1, 2):
            try:
                status, reason, body = self._request(target)
                break
            except (OSError, http.client.HTTPException) as error:
                self.close()
                if attempt == 2:
                    raise Unreachable(error) from error
        if not 200 <= status < 300:
            raise ApiError(status, reason, body)
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ApiError(status, "not a JSON object", body)
        return data

    def _request(self, target: str) -> tuple[int, str, str]:
        if self._connection is None:
            self._connection = self._connect()
        self._connection.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in self._headers:
            self._connection.putheader(name, value)
        self._connection.endheaders()
        response = self._connection.getresponse()
        return response.status, response.reason, response.read().decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
