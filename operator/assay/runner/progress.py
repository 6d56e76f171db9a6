"""Progress lines in the task's log: records done / total, rate and estimated time left."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

# Seconds between two progress lines (the first and the last are always written); a runner-only setting.
ENV_PROGRESS_INTERVAL = "ASSAY_PROGRESS_INTERVAL"
DEFAULT_PROGRESS_INTERVAL_SECONDS = 5.0

log = logging.getLogger("assay.runner")


def progress_interval() -> float:
    """``ASSAY_PROGRESS_INTERVAL`` seconds; the default when unset or not a positive number."""
    try:
        value = float(os.environ.get(ENV_PROGRESS_INTERVAL, ""))
    except ValueError:
        return DEFAULT_PROGRESS_INTERVAL_SECONDS
    return value if value > 0 else DEFAULT_PROGRESS_INTERVAL_SECONDS


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def progress_line(label: str, done: int, total: int, processed: int, elapsed: float) -> str:
    """``label: 512/1000 records (51.2%), 812.4 records/s, ETA 0:00:01``.

    ``processed`` counts records handled by this run (a resumed task's earlier records are not in its rate).
    """
    percent = 100.0 * done / total if total else 100.0
    rate = processed / elapsed if elapsed > 0 else 0.0
    eta = format_duration((total - done) / rate) if rate > 0 else "unknown"
    return f"{label}: {done}/{total} records ({percent:.1f}%), {rate:.1f} records/s, ETA {eta}"


class Progress:
    """Counts records and logs a progress line at most every ``interval`` seconds."""

    def __init__(
        self,
        label: str,
        total: int,
        done: int = 0,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.done = label, total, done
        self.interval = progress_interval() if interval is None else interval
        self.clock = clock
        self.started = self.last_logged = clock()
        self.processed = 0
        log.info(progress_line(label, done, total, 0, 0.0))

    def advance(self, records: int) -> None:
        self.done += records
        self.processed += records
        now = self.clock()
        if now - self.last_logged >= self.interval:
            self.last_logged = now
            log.info(self.line())

    def line(self) -> str:
        return progress_line(self.label, self.done, self.total, self.processed, self.clock() - self.started)

    def finish(self) -> None:
        log.info(self.line())
