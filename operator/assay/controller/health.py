"""The operator's probes on ``--health-port``: ``/healthz`` (liveness) and ``/readyz`` (readiness).

``/healthz`` answers 200 while the event loop runs: restarting the pod cures a hung process, never a
control-plane outage (a restarted operator could not even start without the API). ``/readyz`` answers 503,
with the cause, while the Kubernetes API does not answer, and 200 again once it does; a replica that serves
the admission webhook is also not ready until that server listens (:class:`WebhookListening`), so a rolling
update never puts a replica behind the webhook Service before it can answer the apiserver.

:class:`ApiProbe` asks the apiserver's own ``/readyz`` (which also fails while etcd is away) every
``interval`` seconds, and at once when a client's retry suggests the API went away; what it finds goes to
:class:`~assay.controller.reachability.Reachability`, which logs one line per outage and per recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from kubernetes_asyncio import client

from assay.controller.reachability import Reachability, describe, is_unavailable

DEFAULT_PROBE_INTERVAL_SECONDS = 5.0
# A probe woken by retries waits at least this long after the previous one (retries come in bursts).
MIN_PROBE_SPACING_SECONDS = 1.0


class WebhookListening:
    """Whether this replica's admission webhook server listens yet; ``expected`` False: it serves none."""

    def __init__(self, *, expected: bool) -> None:
        self.expected = expected
        self.listening = False

    @property
    def waiting(self) -> bool:
        return self.expected and not self.listening


class ApiProbe:
    """Probes the API periodically (and on :meth:`wake`), telling ``reachability`` what it finds."""

    def __init__(
        self,
        api: client.ApiClient,
        reachability: Reachability,
        *,
        interval: float = DEFAULT_PROBE_INTERVAL_SECONDS,
        timeout: float = 5.0,
    ) -> None:
        self.api, self.reachability = api, reachability
        self.interval, self.timeout = interval, timeout
        self._woken = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def wake(self) -> None:
        """Probe now (callable from any thread: log records come from wherever something logs)."""
        self._loop.call_soon_threadsafe(self._woken.set)

    async def probe_once(self) -> None:
        try:
            await self.api.call_api(
                "/readyz",
                "GET",
                auth_settings=["BearerToken"],
                response_types_map={200: "str"},
                _request_timeout=self.timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_unavailable(exc):
                self.reachability.failed(describe(exc))
                return
            # Any other answer (401, 403: a credentials or RBAC problem) is an answer: the API is there.
        self.reachability.answered()

    async def run(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(MIN_PROBE_SPACING_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.interval - MIN_PROBE_SPACING_SECONDS)
            self._woken.clear()


def health_app(reachability: Reachability, webhook: WebhookListening | None = None) -> web.Application:
    async def alive(_: web.Request) -> web.Response:
        return web.json_response({})

    async def ready(_: web.Request) -> web.Response:
        outage = reachability.outage
        if outage is not None:
            return web.json_response({"api": "unreachable", "cause": outage.cause}, status=503)
        if webhook is not None and webhook.waiting:
            return web.json_response({"api": "reachable", "webhook": "not listening yet"}, status=503)
        return web.json_response({"api": "reachable"})

    app = web.Application()
    app.add_routes([web.get("/healthz", alive), web.get("/readyz", ready)])
    return app


@contextlib.asynccontextmanager
async def serving_health(
    port: int, probe: ApiProbe, webhook: WebhookListening | None = None
) -> AsyncIterator[None]:
    """Serve the probes on ``port`` (0: none) and run ``probe`` for as long as the block runs."""
    runner: web.AppRunner | None = None
    if port:
        # No access log: the kubelet's probes would add a line every few seconds.
        runner = web.AppRunner(
            health_app(probe.reachability, webhook),
            handle_signals=False,
            shutdown_timeout=1.0,
            access_log=None,
        )
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port).start()
    probing = asyncio.create_task(probe.run(), name="api-probe")
    try:
        yield
    finally:
        probing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probing
        if runner is not None:
            await runner.cleanup()
