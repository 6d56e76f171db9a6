"""Polling until something holds, with a timeout that says what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """What a test waited for did not happen in time (an AssertionError: pytest reports a failure)."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    last_seen: Callable[[], object] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    ``what`` completes "timed out after N s waiting for ...". ``last_seen``, if given, is called on timeout
    and its result added to the message, so a failure shows the state the test actually found.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f"; last seen: {last_seen()}" if last_seen is not None else ""
            raise WaitTimeoutError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)
