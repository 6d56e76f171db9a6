"""One reconcile at a time per object, bursts of events folded into one more run, precise wake-ups.

A pod event, a Job event and an Evaluation event arriving together ask for the same Evaluation to be
reconciled; running the reconcile three times would compute the same status three times. Requests made
while a reconcile runs mark the key dirty and cause exactly one more run after it. A key runs at most once
per ``batch_seconds``: the first request of a quiet key runs at once (no added latency), requests within the
window after a run start wait for its end and make one run (the pods of a Job starting together, the
Evaluations of a pool changing one after another). Failed runs are retried
with exponential backoff. :meth:`Coalescer.wake_at` arms one timer per key (auto-release, a late pod
report): a precise per-object timer, never a loop over all objects.

At most ``max_running`` keys run at once (as a Kubernetes controller's workers); the others wait in
request order, as keys, those requested ``urgent`` (a new or changed object, which someone waits for) ahead
of the rest. Unbounded, a burst of new objects starts a reconcile for each of them at once: each
holds its object, its plan and an API request in memory while the apiserver serves a few at a time, and
the process' memory keeps that high-water mark.
"""

from __future__ import annotations

import asyncio
import logging
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
        max_running: int | None = None,
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
        # A key runs at most once per window; requests within it wait for its end (one run for a burst).
        self._batch_seconds = batch_seconds
        self._cooling: dict[K, asyncio.TimerHandle] = {}
        self._wanted: set[K] = set()  # requested while cooling: run when the window ends
        self._max_running = max_running
        # Requested while every worker was busy, in request order: urgent ones, then the others.
        self._waiting_urgent: dict[K, None] = {}
        self._waiting: dict[K, None] = {}

    def request(self, key: K, *, urgent: bool = False) -> None:
        """Reconcile ``key`` soon: now, right after the run in progress, or when its batch window ends;
        when every worker is busy, once one is free (``urgent``: before the keys requested otherwise)."""
        if self._closed:
            return
        if key in self._running:
            self._dirty.add(key)
            return
        if key in self._cooling:
            self._wanted.add(key)
            return
        if self._max_running is not None and len(self._running) >= self._max_running:
            if urgent:
                self._waiting.pop(key, None)
                self._waiting_urgent[key] = None
            elif key not in self._waiting_urgent:
                self._waiting[key] = None
            return
        self._start(key)

    def _start(self, key: K) -> None:
        self._running[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"{self.name}:{key}")

    def _start_waiting(self) -> None:
        """Give free workers to the keys that wait, oldest request first."""
        while (self._waiting_urgent or self._waiting) and not self._closed:
            if self._max_running is not None and len(self._running) >= self._max_running:
                return
            line = self._waiting_urgent or self._waiting
            key = next(iter(line))
            del line[key]
            self._start(key)

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
        cooling = self._cooling.pop(key, None)
        if cooling is not None:
            cooling.cancel()
        self._wanted.discard(key)
        self._waiting.pop(key, None)
        self._waiting_urgent.pop(key, None)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self._timer_due.pop(key, None)
        self.request(key, urgent=True)  # a timer is a deadline (auto-release, a planned write)

    async def _run(self, key: K) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while True:
                self._dirty.discard(key)
                started = loop.time()
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
                    logger.debug("%s %s took %.3f s", self.name, key, loop.time() - started)
                if key not in self._dirty:
                    return
                if loop.time() < started + self._batch_seconds:
                    self._dirty.discard(key)
                    self._wanted.add(key)  # the next run waits for the window's end
                    return
        finally:
            self._running.pop(key, None)
            self._cool(key, started + self._batch_seconds)
            self._start_waiting()

    def _cool(self, key: K, until: float) -> None:
        """Hold later requests of ``key`` until ``until`` (loop time); then run once if any came."""
        loop = asyncio.get_running_loop()
        if self._closed or until <= loop.time():
            if key in self._wanted:
                self._wanted.discard(key)
                self.request(key)
            return
        self._cooling[key] = loop.call_at(until, self._cooled, key)

    def _cooled(self, key: K) -> None:
        self._cooling.pop(key, None)
        if key in self._wanted:
            self._wanted.discard(key)
            self.request(key)

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
        for handle in [*self._timers.values(), *self._retries.values(), *self._cooling.values()]:
            handle.cancel()
        self._timers.clear()
        self._retries.clear()
        self._cooling.clear()
        self._wanted.clear()
        self._waiting.clear()
        self._waiting_urgent.clear()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
