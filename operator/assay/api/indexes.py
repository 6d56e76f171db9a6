"""Sets of task indexes as Indexed Jobs write them: ``"0-41,43,45-99"``."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby


def parse_index_ranges(text: object) -> set[int]:
    """The indexes of ``"1,3-5"`` (a Job's completedIndexes, failedIndexes); unreadable parts are skipped."""
    indexes: set[int] = set()
    for part in str(text or "").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            indexes.update(range(int(low), int(high or low) + 1))
        except ValueError:
            continue
    return indexes


def format_index_ranges(indexes: Iterable[int]) -> str:
    """``{0, 1, 2, 5}`` as ``"0-2,5"``."""
    parts = []
    # Consecutive indexes keep the same difference to their position in the sorted list.
    for _, run in groupby(enumerate(sorted(set(indexes))), key=lambda pair: pair[1] - pair[0]):
        values = [index for _, index in run]
        parts.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    return ",".join(parts)
