"""The compare page's model: which evaluations, against which baseline, and the links that change it (pure).

The comparison itself is :func:`assay.compare.compare` over :func:`assay.facts.subject`, exactly what
``assay compare`` prints; this module only names the evaluations (``namespace/name``, since the console can
list several namespaces) and keeps the page's state in its URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from assay import compare as comparing
from assay import facts
from assay.api import Evaluation


def split_ref(ref: str, default_namespace: str) -> tuple[str, str]:
    """``ns/name`` (or a bare ``name`` in the default namespace) as (namespace, name)."""
    namespace, _, name = ref.rpartition("/")
    return (namespace or default_namespace), name


@dataclass(frozen=True)
class CompareView:
    """The compared evaluations as ``namespace/name`` references, in the order they were ticked."""

    refs: tuple[str, ...]
    baseline: str = ""  # a reference from refs; empty: the first
    only_diff: bool = False

    @classmethod
    def from_query(cls, refs: Sequence[str], query: Mapping[str, str]) -> CompareView:
        return cls(
            refs=tuple(dict.fromkeys(r for r in refs if r)),
            baseline=query.get("base", ""),
            only_diff=query.get("diff", "") in ("1", "true", "on"),
        )

    def to_query(self) -> str:
        params: list[tuple[str, str]] = [("e", ref) for ref in self.refs]
        if self.baseline:
            params.append(("base", self.baseline))
        if self.only_diff:
            params.append(("diff", "1"))
        return urlencode(params, safe="/")

    def with_(self, **changes: Any) -> CompareView:
        return dataclasses.replace(self, **changes)

    def comparison(self, evaluations: Sequence[Evaluation], now: datetime) -> comparing.Comparison:
        """Compare ``evaluations`` (one per reference, same order). Subjects are named by their reference
        when the evaluations span namespaces, else by their name, as ``assay compare`` names them."""
        one_namespace = len({e.namespace for e in evaluations}) <= 1
        subjects = []
        for evaluation in evaluations:
            made = facts.subject(evaluation, now)
            if not one_namespace:
                made = dataclasses.replace(made, name=f"{evaluation.namespace}/{evaluation.name}")
            subjects.append(made)
        baseline = None
        if self.baseline in self.refs:
            chosen = evaluations[self.refs.index(self.baseline)]
            baseline = chosen.name if one_namespace else f"{chosen.namespace}/{chosen.name}"
        return comparing.compare(subjects, baseline=baseline, only_diff=self.only_diff)

    def ref_of(self, comparison: comparing.Comparison, position: int) -> str:
        """The reference of the ``position``-th column of ``comparison`` (the baseline is column 0)."""
        name = comparison.subjects[position].name
        return next((r for r in self.refs if r == name or r.rpartition("/")[2] == name), name)


def bar_fractions(row: comparing.Row) -> list[float | None] | None:
    """Each cell's share of the row's largest magnitude, for the row's little bar chart; None for rows that
    are not numbers in at least two evaluations (text, ids, times) or whose values are all zero."""
    values = [c.value if comparing.is_number(c.value) else None for c in row.cells]
    numbers = [abs(float(v)) for v in values if v is not None]
    if row.key.startswith(comparing.SYS_PREFIX) or len(numbers) < 2 or max(numbers) == 0:
        return None
    top = max(numbers)
    return [None if v is None else abs(float(v)) / top for v in values]
