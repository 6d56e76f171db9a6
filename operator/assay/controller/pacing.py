"""When an Evaluation may next write progress: per Evaluation, and for the whole operator.

Progress (task entries, counts, cost, the Running condition...) changes with every pod transition; writing
it each time would make the status writes grow with the pods, and under load (thousands of Evaluations
whose pods wait for GPUs) with the time they take. So a progress-only change waits until both:

* the Evaluation's own interval has passed since its status was last written: ``interval`` seconds, or
  ``age_fraction`` of the Evaluation's age when that is longer, up to ``max_interval``; and
* a slot of the operator-wide budget of ``rate`` progress writes per second is its turn.

The interval growing with the age bounds the writes per Evaluation lifetime, not only per second: a
young Evaluation's progress is fresh every few seconds, an hour-old one's every minute, and one that
waited long for GPUs does not spend the operator-wide budget on every step of a short run.
With a few Evaluations the own interval rules; with thousands the budget spreads their progress writes
out, so the write load on the apiserver stays bounded whatever the number.
Phase changes, results and problem conditions never wait (the reconciler writes them at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressPacer:
    """Hands out progress-write times (monotonic clock); see the module docstring."""

    def __init__(
        self,
        interval: float,
        rate: float,
        age_fraction: float = 0.0,
        max_interval: float = float("inf"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.rate = rate
        self.age_fraction = age_fraction
        self.max_interval = max_interval
        self._clock = clock
        self._last_write: dict[str, float] = {}
        self._granted: dict[str, float] = {}  # a slot granted and not yet used, by uid
        self._next_slot = float("-inf")

    def interval_at(self, age: float) -> float:
        """An Evaluation's own interval between progress writes at ``age`` seconds."""
        return max(self.interval, min(age * self.age_fraction, self.max_interval))

    def due(self, uid: str, age: float = 0.0) -> float | None:
        """None: write the progress now. Otherwise when to write it (ask again then). ``age``: seconds
        since the Evaluation was created."""
        if self.interval <= 0 and self.rate <= 0 and self.age_fraction <= 0:
            return None
        now = self._clock()
        granted = self._granted.get(uid)
        if granted is None:
            slot = max(now, self._next_slot)
            if self.rate > 0:
                self._next_slot = slot + 1 / self.rate
            # Unknown (a restarted operator): paced by the budget alone, so a restart is no burst.
            last = self._last_write.get(uid, float("-inf"))
            granted = self._granted[uid] = max(slot, last + self.interval_at(age))
        return None if granted <= now else granted

    def planned(self, uid: str) -> bool:
        """Whether a progress write of the Evaluation is planned for later (granted by :meth:`due`; the
        reconcile that asked armed a wake-up for it, which writes the then-current progress)."""
        granted = self._granted.get(uid)
        return granted is not None and granted > self._clock()

    def wrote(self, uid: str) -> None:
        """The Evaluation's status was written (whatever it carried): progress restarts from now."""
        self._last_write[uid] = self._clock()
        self._granted.pop(uid, None)

    def forget(self, uid: str) -> None:
        self._last_write.pop(uid, None)
        self._granted.pop(uid, None)
