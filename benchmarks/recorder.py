"""The watch recorder: stamps what each evaluation went through with the time the watch delivered it.

Three watches on the benchmark namespace (Jobs, pods, and the arm's top object when it is not a Job) feed
:class:`~benchmarks.stats.EvalTimes`. Handlers are idempotent (first/last instants, pods counted once by uid),
so a watch restarted after a disconnect may replay events safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from .kube import ApiError, Kube, WatchEvent
from .stats import EvalTimes

log = logging.getLogger("bench.recorder")

Handler = Callable[[WatchEvent], None]


def condition_true(obj: dict[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in obj.get("status", {}).get("conditions") or []
    )


class Recorder:
    def __init__(
        self,
        kube: Kube,
        names: list[str],
        *,
        job_label: str,
        pod_label: str,
        outcome_of: Callable[[dict[str, Any]], str | None],
        top_path: str | None,
        on_job: Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        """``outcome_of(top object)`` says how an evaluation ended (None: not yet); the top object is the
        Job itself when ``top_path`` is None (A0). ``on_job(evaluation, job)`` lets an arm react (A0 creates
        its evaluate Job when predict completes)."""
        self.kube = kube
        self.times = {n: EvalTimes() for n in names}
        self.job_label, self.pod_label = job_label, pod_label
        self.outcome_of, self.top_path, self.on_job = outcome_of, top_path, on_job
        self.all_finished = asyncio.Event()
        self._unfinished = set(names)
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []

    async def start(self, namespace: str) -> None:
        """Open the watches and return once each one is established."""
        base = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        watches: list[tuple[str, Handler]] = [
            (base, self._job),
            (f"/api/v1/namespaces/{namespace}/pods", self._pod),
        ]
        if self.top_path:
            watches.append((self.top_path, self._top))
        opened = [asyncio.Event() for _ in watches]
        for (path, handler), ready in zip(watches, opened, strict=True):
            self._tasks.append(asyncio.create_task(self._watch_forever(path, handler, ready)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), timeout=30)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch_forever(self, path: str, handler: Handler, opened: asyncio.Event) -> None:
        resource_version: str | None = None
        while True:
            try:
                async for event in self.kube.watch(path, resource_version, opened=opened):
                    if event.type == "ERROR":
                        resource_version = None  # expired: start over (handlers are idempotent)
                        break
                    resource_version = event.obj.get("metadata", {}).get("resourceVersion", resource_version)
                    if event.type != "BOOKMARK":
                        handler(event)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, ApiError, OSError, ValueError) as exc:
                log.warning("watch %s interrupted (%s); restarting", path, exc)
                await asyncio.sleep(0.2)

    def _evaluation(self, obj: dict[str, Any], label: str) -> EvalTimes | None:
        name = (obj.get("metadata", {}).get("labels") or {}).get(label)
        return self.times.get(name) if name else None

    def _job(self, event: WatchEvent) -> None:
        times = self._evaluation(event.obj, self.job_label)
        if times is None:
            return
        if times.job_created is None:
            times.job_created = event.received  # the first Job of an evaluation is its predict Job
        if self.top_path is None:
            self._top(event)
        if self.on_job is not None:
            name = event.obj["metadata"]["labels"][self.job_label]
            task = asyncio.create_task(self.on_job(name, event.obj))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _pod(self, event: WatchEvent) -> None:
        times = self._evaluation(event.obj, self.pod_label)
        if times is None:
            return
        if event.obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            uid = event.obj["metadata"]["uid"]
            if uid not in times.pods_done:
                times.pods_done.add(uid)
                times.last_pod_done = max(times.last_pod_done or 0.0, event.received)

    def _top(self, event: WatchEvent) -> None:
        outcome = self.outcome_of(event.obj)
        if outcome is None:
            return
        meta = event.obj["metadata"]
        name = (meta.get("labels") or {}).get(self.job_label) if self.top_path is None else meta["name"]
        times = self.times.get(name or "")
        if times is None or times.finished is not None:
            return
        times.finished, times.outcome = event.received, outcome
        self._unfinished.discard(name or "")
        if not self._unfinished:
            self.all_finished.set()

    def unfinished(self) -> int:
        return len(self._unfinished)
