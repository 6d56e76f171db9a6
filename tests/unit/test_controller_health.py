"""The operator's /readyz: a replica serving the webhook behind its Service is ready only once it listens."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from assay.controller.health import WebhookListening, health_app
from assay.controller.reachability import Reachability


async def _readyz(webhook: WebhookListening | None, *, listen_after_first: bool) -> list[tuple[int, Any]]:
    answers = []
    async with TestClient(TestServer(health_app(Reachability(), webhook))) as client:
        for _ in range(2):
            reply = await client.get("/readyz")
            answers.append((reply.status, await reply.json()))
            if listen_after_first and webhook is not None:
                webhook.listening = True
    return answers


def test_a_replica_is_not_ready_until_its_webhook_server_listens() -> None:
    answers = asyncio.run(_readyz(WebhookListening(expected=True), listen_after_first=True))
    assert answers == [
        (503, {"api": "reachable", "webhook": "not listening yet"}),
        (200, {"api": "reachable"}),
    ]


def test_a_replica_without_a_webhook_server_is_ready_at_once() -> None:
    for webhook in (WebhookListening(expected=False), None):
        answers = asyncio.run(_readyz(webhook, listen_after_first=False))
        assert answers == [(200, {"api": "reachable"})] * 2
