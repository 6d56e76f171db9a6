"""One reconcile at a time per object, bursts of events folded into one more run, precise wake-ups.

A pod event, a Job event and an Evaluation event arriving together ask for the same Evaluation to be
reconciled; running the reconcile three times would compute the same status three times. Requests made
while a reconcile runs mark the key dirty and cause exactly one more run after it. Failed runs are retried
with exponential backoff. :meth:`Coalescer.wake_at` arms one timer per key (auto-release, a late pod
report): a precise per-object timer, never a loop over all objects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Coalescer(Generic[K]):
    """Runs ``work(key)`` serially per key; concurrent requests coalesce."""

    def __init__(
        self,
        name: str,
        work: Callable[[K], Awaitable[None]],
        *,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        batch_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self._work = work
        self._running: dict[K, asyncio.Task[None]] = {}
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._timer_due: dict[K, float] = {}
        self._retries: dict[K, asyncio.TimerHandle] = {}
        self._backoff: dict[K, float] = {}
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._closed = False
        # Events of one burst (a Job's pods starting together) within this window make one reconcile.
        self._batch_seconds = batch_seconds
        self._pending: dict[K, asyncio.TimerHandle] = {}

    def request(self, key: K) -> None:
        """Reconcile ``key`` soon: now, or right after the run in progress."""
        if self._closed:
            return
        if key in self._running:
            self._dirty.add(key)
            return
        self._running[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"{self.name}:{key}")

    def wake_at(self, key: K, when: datetime | None) -> None:
        """Reconcile ``key`` at ``when`` (replacing an earlier timer of the key); None cancels it."""
        handle = self._timers.pop(key, None)
        self._timer_due.pop(key, None)
        if handle is not None:
            handle.cancel()
        if when is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when - datetime.now(UTC)).total_seconds())
        due = loop.time() + delay + 0.05  # a hair late rather than early: "now >= expiresAt" must hold
        self._timer_due[key] = due
        self._timers[key] = loop.call_at(due, self._fire, key)

    def forget(self, key: K) -> None:
        """Drop timers and retries of a key that no longer exists."""
        self.wake_at(key, None)
        retry = self._retries.pop(key, None)
        if retry is not None:
            retry.cancel()
        self._backoff.pop(key, None)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self._timer_due.pop(key, None)
        self.request(key)

    async def _run(self, key: K) -> None:
        try:
            while True:
                self._dirty.discard(key)
                started = time.monotonic()
                try:
                    await self._work(key)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one object's failure must not stop the others
                    delay = self._backoff.get(key, self._retry_initial)
                    self._backoff[key] = min(delay * 2, self._retry_max)
                    logger.warning(
                        "%s %s failed (%s: %s); retrying in %.1f s",
                        self.name,
                        key,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                    self._schedule_retry(key, delay)
                else:
                    self._backoff.pop(key, None)
                    logger.debug("%s %s took %.3f s", self.name, key, time.monotonic() - started)
                if key not in self._dirty:
                    return
        finally:
            self._running.pop(key, None)

    def _schedule_retry(self, key: K, delay: float) -> None:
        previous = self._retries.pop(key, None)
        if previous is not None:
            previous.cancel()
        self._retries[key] = asyncio.get_running_loop().call_later(delay, self._retry, key)

    def _retry(self, key: K) -> None:
        self._retries.pop(key, None)
        self.request(key)

    async def close(self) -> None:
        """Cancel timers and wait for runs in progress to stop."""
        self._closed = True
        for handle in [*self._timers.values(), *self._retries.values(), *self._pending.values()]:
            handle.cancel()
        self._timers.clear()
        self._retries.clear()
        self._pending.clear()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
