"""The list page's view state (columns, order, pins, sort, filters) and its round trip through the URL.

Pure: no cluster, no web framework. The state is the whole view, so a bookmarked or shared URL shows the same
table; every link of the column menu is this state with one thing changed (:meth:`ListView.with_`).

Column ids: the ``assay list`` columns by their lower-case header (``name``, ``pool``, ...), every ``sys/*``
fact by its key, and every summary metric as ``m:NAME`` (a metric may be called ``name`` too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from assay import compare as comparing
from assay import facts
from assay.api import Evaluation
from assay.cli import views
from assay.render.names import LABEL_EVALUATION_SET, label_value

METRIC_PREFIX = "m:"

# The columns of `assay list` (and -o wide), in its order; the first ones are shown by default.
LIST_COLUMNS: tuple[str, ...] = (
    "namespace",
    "name",
    "pool",
    "phase",
    "tasks",
    "result",
    "cost",
    "age",
    "model",
    "dataset",
    "duration",
    "expires",
)
DEFAULT_COLUMNS: tuple[str, ...] = ("name", "pool", "phase", "tasks", "result", "cost", "age")
ALWAYS_SHOWN = "name"  # the link to the details; hiding it would leave rows nobody can open


def column_title(column: str) -> str:
    if column.startswith(METRIC_PREFIX):
        return column[len(METRIC_PREFIX) :]
    if column.startswith(comparing.SYS_PREFIX):
        return column
    return column.upper()


def _ref(name: str, version: str | None) -> str:
    return f"{name}:{version}" if version else name


def _metric(evaluation: Evaluation, name: str) -> comparing.Value:
    return facts.summary(evaluation).get(name)


# How each `assay list` column reads an evaluation: (text shown, value it sorts by).
_LIST_CELLS: dict[str, Callable[[Evaluation, datetime], tuple[str, Any]]] = {
    "namespace": lambda e, now: (e.namespace, e.namespace),
    "name": lambda e, now: (e.name, e.name),
    "pool": lambda e, now: (e.spec.pool, e.spec.pool),
    "phase": lambda e, now: (facts.phase_of(e), facts.phase_of(e)),
    "tasks": lambda e, now: ("{}/{}".format(*facts.tasks_done(e)), facts.tasks_done(e)),
    "result": lambda e, now: (views.headline_text(e), (facts.headline_metric(e) or ("", None))[1]),
    "cost": lambda e, now: (facts.cost_text(e), facts.sys_facts(e, now)["sys/cost"]),
    "age": lambda e, now: (
        facts.age(e.metadata.creation_timestamp, now),
        # Younger sorts first ascending, as kubectl's AGE reads.
        -(e.metadata.creation_timestamp.timestamp()) if e.metadata.creation_timestamp else None,
    ),
    "model": lambda e, now: (_ref(e.spec.model.name, e.spec.model.version),) * 2,
    "dataset": lambda e, now: (_ref(e.spec.dataset.name, e.spec.dataset.version),) * 2,
    "duration": lambda e, now: (
        facts.format_duration(facts.duration(e, now)),
        facts.sys_facts(e, now)["sys/duration"],
    ),
    "expires": lambda e, now: (facts.format_time(e.status.expires_at) or "", e.status.expires_at),
}


def cell(evaluation: Evaluation, column: str, now: datetime) -> tuple[str, Any]:
    """The text of one cell and the value it sorts by (None: empty, sorted last)."""
    if column in _LIST_CELLS:
        return _LIST_CELLS[column](evaluation, now)
    if column.startswith(METRIC_PREFIX):
        value = _metric(evaluation, column[len(METRIC_PREFIX) :])
    else:
        value = facts.sys_facts(evaluation, now).get(column)
    return comparing.format_value(value), value


def available_columns(evaluations: Iterable[Evaluation]) -> list[str]:
    """Every column the menu offers: the list's, every summary metric any evaluation has, every sys fact."""
    metrics: dict[str, None] = {}
    sys_keys: dict[str, None] = {}
    for evaluation in evaluations:
        for name in facts.summary(evaluation):
            metrics.setdefault(METRIC_PREFIX + name, None)
        sys_keys.update(dict.fromkeys(facts.sys_facts(evaluation)))  # the same keys for every evaluation
    return [*LIST_COLUMNS, *metrics, *sys_keys]


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part for part in (text or "").split(",") if part))


@dataclass(frozen=True)
class ListView:
    """What the list page shows. ``columns`` are the visible columns in their order; ``pins`` the ones kept
    at the left edge (shown first, in ``columns`` order); ``sort`` a column id, ``-`` in front for
    descending, empty for the list's own order (newest first)."""

    columns: tuple[str, ...] = DEFAULT_COLUMNS
    pins: tuple[str, ...] = ()
    sort: str = ""
    phase: str = ""
    pool: str = ""
    model: str = ""
    text: str = ""
    evaluation_set: str = ""  # only the children of this EvaluationSet

    # --- the URL ---------------------------------------------------------------------------------------

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, all_namespaces: bool = False) -> ListView:
        """The view a query string describes; what it leaves out keeps its default. Unknown column ids are
        kept: a metric may appear once more evaluations finish."""
        defaults = cls.defaults(all_namespaces=all_namespaces)
        columns = _csv(query.get("cols")) or defaults.columns
        if ALWAYS_SHOWN not in columns:
            columns = (ALWAYS_SHOWN, *columns)
        return cls(
            columns=columns,
            pins=tuple(p for p in _csv(query.get("pin")) if p in columns),
            sort=query.get("sort", ""),
            phase=query.get("phase", ""),
            pool=query.get("pool", ""),
            model=query.get("model", ""),
            text=query.get("q", ""),
            evaluation_set=query.get("set", ""),
        )

    @classmethod
    def defaults(cls, *, all_namespaces: bool = False) -> ListView:
        return cls(columns=(("namespace",) if all_namespaces else ()) + DEFAULT_COLUMNS)

    def to_params(self, *, all_namespaces: bool = False) -> dict[str, str]:
        """The query parameters of this view: only what differs from the default, so URLs stay short."""
        params: dict[str, str] = {}
        if self.columns != self.defaults(all_namespaces=all_namespaces).columns:
            params["cols"] = ",".join(self.columns)
        if self.pins:
            params["pin"] = ",".join(self.pins)
        for key, value in (
            ("sort", self.sort),
            ("phase", self.phase),
            ("pool", self.pool),
            ("model", self.model),
            ("q", self.text),
            ("set", self.evaluation_set),
        ):
            if value:
                params[key] = value
        return params

    def to_query(self, *, all_namespaces: bool = False) -> str:
        # Commas, colons and slashes stay readable: `?cols=name,m:accuracy,sys/duration`.
        return urlencode(self.to_params(all_namespaces=all_namespaces), safe=",:/")

    # --- changes (each a new view: one link of the menu) ----------------------------------------------

    def with_(self, **changes: Any) -> ListView:
        return dataclasses.replace(self, **changes)

    def toggled(self, column: str) -> ListView:
        """Show a hidden column (at the end) or hide a shown one (and unpin it)."""
        if column == ALWAYS_SHOWN:
            return self
        if column in self.columns:
            return self.with_(
                columns=tuple(c for c in self.columns if c != column),
                pins=tuple(p for p in self.pins if p != column),
            )
        return self.with_(columns=(*self.columns, column))

    def pinned(self, column: str) -> ListView:
        """Pin a shown column, or unpin a pinned one."""
        if column in self.pins:
            return self.with_(pins=tuple(p for p in self.pins if p != column))
        if column not in self.columns:
            return self
        return self.with_(pins=(*self.pins, column))

    def moved(self, column: str, offset: int) -> ListView:
        """Move a shown column ``offset`` places (negative: to the left), stopping at the edges."""
        if column not in self.columns:
            return self
        order = list(self.columns)
        start = order.index(column)
        order.insert(max(0, min(len(order) - 1, start + offset)), order.pop(start))
        return self.with_(columns=tuple(order))

    def reordered(self, order: Sequence[str]) -> ListView:
        """The shown columns in a new order (a drag in the header); ids it does not name keep their place
        after the named ones."""
        named = [c for c in order if c in self.columns]
        return self.with_(columns=tuple(dict.fromkeys([*named, *self.columns])))

    def sorted_by(self, column: str) -> ListView:
        """Sort by a column; a second click on the same one reverses, a third returns to newest first."""
        if self.sort == column:
            return self.with_(sort="-" + column)
        if self.sort == "-" + column:
            return self.with_(sort="")
        return self.with_(sort=column)

    # --- what the table shows ------------------------------------------------------------------------------

    @property
    def shown(self) -> tuple[str, ...]:
        """The visible columns as drawn: pinned first, then the rest, each group in ``columns`` order."""
        return (
            *(c for c in self.columns if c in self.pins),
            *(c for c in self.columns if c not in self.pins),
        )

    def matches(self, evaluation: Evaluation) -> bool:
        """The filters: phase and pool exactly (any case), the set by its children's label, model as a prefix
        of ``name:version``, the text anywhere in the namespace, name, model, dataset or pool."""
        if self.phase and facts.phase_of(evaluation).lower() != self.phase.lower():
            return False
        if self.pool and evaluation.spec.pool != self.pool:
            return False
        if self.evaluation_set and evaluation.metadata.labels.get(LABEL_EVALUATION_SET) != label_value(
            self.evaluation_set
        ):
            return False
        model = _ref(evaluation.spec.model.name, evaluation.spec.model.version)
        if self.model and not model.startswith(self.model):
            return False
        if self.text:
            haystack = " ".join(
                [
                    evaluation.namespace,
                    evaluation.name,
                    model,
                    _ref(evaluation.spec.dataset.name, evaluation.spec.dataset.version),
                    evaluation.spec.pool,
                ]
            ).lower()
            return self.text.lower() in haystack
        return True

    def apply(self, evaluations: Sequence[Evaluation], now: datetime) -> list[Evaluation]:
        """Filter, then sort (stable: equal values keep the list's newest-first order; empty cells last)."""
        chosen = [e for e in evaluations if self.matches(e)]
        if not self.sort:
            return chosen
        column = self.sort.removeprefix("-")
        descending = self.sort.startswith("-")
        keyed = [(cell(e, column, now)[1], e) for e in chosen]
        present = [(k, e) for k, e in keyed if k is not None]
        empty = [e for k, e in keyed if k is None]
        present.sort(key=lambda pair: _sort_key(pair[0]), reverse=descending)
        return [e for _, e in present] + empty


def _sort_key(value: Any) -> tuple[int, Any]:
    # Numbers before text, so a column that mixes both still sorts without a TypeError.
    if isinstance(value, bool):
        return 1, str(value)
    if isinstance(value, int | float):
        return 0, value
    if isinstance(value, tuple):
        return 0, value
    return 1, str(value)
