"""The per-object reconcile runner: serial per key, bursts folded, retries with backoff, precise timers.

The event loop runs on looptime's fake clock: a sleep is exactly that much loop time, whatever the machine's
load, so the timing asserts are exact and cannot fail by chance (nor pass by chance).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from assay.controller.coalescer import Coalescer

pytestmark = pytest.mark.looptime


async def test_requests_during_a_run_fold_into_one_more_run() -> None:
    runs: list[str] = []
    gate = asyncio.Event()

    async def work(key: str) -> None:
        runs.append(key)
        await gate.wait()

    runner: Coalescer[str] = Coalescer("test", work)
    runner.request("a")
    await asyncio.sleep(0)
    for _ in range(5):
        runner.request("a")  # while the first run waits
    gate.set()
    await asyncio.sleep(0.05)
    assert runs == ["a", "a"]
    await runner.close()


async def test_keys_run_independently_and_one_at_a_time() -> None:
    active: dict[str, int] = {}
    peak: dict[str, int] = {}

    async def work(key: str) -> None:
        active[key] = active.get(key, 0) + 1
        peak[key] = max(peak.get(key, 0), active[key])
        await asyncio.sleep(0.01)
        active[key] -= 1

    runner: Coalescer[str] = Coalescer("test", work)
    for _ in range(3):
        runner.request("a")
        runner.request("b")
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.1)
    assert peak == {"a": 1, "b": 1}
    await runner.close()


async def test_a_burst_within_the_batch_window_is_one_run() -> None:
    runs: list[str] = []

    async def work(key: str) -> None:
        runs.append(key)

    runner: Coalescer[str] = Coalescer("test", work, batch_seconds=0.05)
    for _ in range(10):
        runner.request("a")
    await asyncio.sleep(0.15)
    assert runs == ["a"]
    await runner.close()


async def test_failures_are_retried_with_backoff() -> None:
    attempts: list[float] = []

    async def work(key: str) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) < 3:
            raise RuntimeError("the API said no")

    runner: Coalescer[str] = Coalescer("test", work, retry_initial=1.0, retry_max=60.0)
    runner.request("a")
    await asyncio.sleep(10)
    assert len(attempts) == 3
    assert [attempts[1] - attempts[0], attempts[2] - attempts[1]] == [pytest.approx(1.0), pytest.approx(2.0)]
    await runner.close()


async def test_wake_at_runs_once_at_the_time_and_can_be_replaced_or_cancelled() -> None:
    runs: list[float] = []

    async def work(key: str) -> None:
        runs.append(asyncio.get_running_loop().time())

    runner: Coalescer[str] = Coalescer("test", work)
    start = asyncio.get_running_loop().time()
    runner.wake_at("a", datetime.now(UTC) + timedelta(seconds=10))
    runner.wake_at("a", datetime.now(UTC) + timedelta(milliseconds=50))  # replaces the first
    runner.wake_at("b", datetime.now(UTC) + timedelta(milliseconds=50))
    runner.wake_at("b", None)  # cancelled
    await asyncio.sleep(20)
    assert len(runs) == 1
    # At the time, a hair late (the runner adds 50 ms so that "now >= when" holds when it runs).
    assert runs[0] - start == pytest.approx(0.1, abs=0.01)
    await runner.close()


async def test_a_quiet_key_runs_at_once_and_requests_in_its_window_wait_for_its_end() -> None:
    loop = asyncio.get_running_loop()
    runs: list[float] = []

    async def work(key: str) -> None:
        runs.append(loop.time())

    runner: Coalescer[str] = Coalescer("test", work, batch_seconds=0.2)
    asked = loop.time()
    runner.request("a")
    await asyncio.sleep(0.01)
    assert len(runs) == 1 and runs[0] == asked  # no added latency for the first event
    for _ in range(5):
        runner.request("a")  # inside the window: folded into one run at its end
        await asyncio.sleep(0.02)
    assert len(runs) == 1
    await asyncio.sleep(0.3)
    assert len(runs) == 2
    assert runs[1] - runs[0] == pytest.approx(0.2)  # at the window's end
    await asyncio.sleep(0.3)
    assert len(runs) == 2  # nothing more was asked
    runner.request("a")  # quiet again: at once
    await asyncio.sleep(0.01)
    assert len(runs) == 3
    await runner.close()


async def test_forgetting_a_key_drops_its_waiting_run() -> None:
    runs: list[str] = []

    async def work(key: str) -> None:
        runs.append(key)

    runner: Coalescer[str] = Coalescer("test", work, batch_seconds=0.1)
    runner.request("a")
    await asyncio.sleep(0.01)
    runner.request("a")
    runner.forget("a")
    await asyncio.sleep(0.2)
    assert runs == ["a"]
    await runner.close()


async def test_at_most_max_running_keys_run_and_the_rest_wait_in_request_order() -> None:
    started: list[str] = []
    active = 0
    peak = 0

    async def work(key: str) -> None:
        nonlocal active, peak
        started.append(key)
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(1.0)
        active -= 1

    runner: Coalescer[str] = Coalescer("test", work, max_running=2)
    for key in "abcde":
        runner.request(key)
    runner.request("c")  # already waiting: keeps its place, runs once
    await asyncio.sleep(0.5)
    assert started == ["a", "b"]
    await asyncio.sleep(1.0)
    assert started == ["a", "b", "c", "d"]
    await asyncio.sleep(1.0)
    assert started == ["a", "b", "c", "d", "e"] and peak == 2
    await runner.close()


async def test_a_forgotten_key_leaves_the_waiting_line() -> None:
    started: list[str] = []

    async def work(key: str) -> None:
        started.append(key)
        await asyncio.sleep(1.0)

    runner: Coalescer[str] = Coalescer("test", work, max_running=1)
    for key in "abc":
        runner.request(key)
    runner.forget("b")
    await asyncio.sleep(2.5)
    assert started == ["a", "c"]
    await runner.close()


async def test_urgent_requests_wait_ahead_of_the_others() -> None:
    started: list[str] = []

    async def work(key: str) -> None:
        started.append(key)
        await asyncio.sleep(1.0)

    runner: Coalescer[str] = Coalescer("test", work, max_running=1)
    runner.request("busy")
    runner.request("pod-driven")
    runner.request("new", urgent=True)
    runner.request("also-pod-driven")
    runner.request("also-pod-driven", urgent=True)  # moves up the line
    runner.request("new", urgent=False)  # keeps its place among the urgent ones
    await asyncio.sleep(4.5)
    assert started == ["busy", "new", "also-pod-driven", "pod-driven"]
    await runner.close()
