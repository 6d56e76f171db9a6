"""The controller's API client skips aiohttp's per-request environment lookups unless proxies are set."""

from __future__ import annotations

import pytest

from assay.controller.kube import api_client

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


async def test_without_proxy_variables_the_session_does_not_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    api = api_client()
    try:
        session = api.rest_client.pool_manager
        assert session.trust_env is False
        assert session.connector is not None and not session.connector.closed  # the pool was kept
    finally:
        await api.close()


async def test_with_a_proxy_variable_the_session_keeps_honouring_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    api = api_client()
    try:
        assert api.rest_client.pool_manager.trust_env is True
    finally:
        await api.close()
