"""What the list page opens next to its table, kept in its URL with the list's own view (pure).

* ``open=NS/NAME`` — the details of one evaluation beside the list (half screen), the list still usable;
  what the details page itself shows (its tab, a results filter) follows after a ``?``:
  ``open=team-a/cnn-v3?tab=results``.
* ``e=NS/NAME`` (once per ticked evaluation), ``base``, ``diff`` — the compare view below the list, the same
  parameters as the full-screen ``/compare`` page.

Each pane is the page it stands for, in a frame: the page works there as it does full screen, and the
script copies what changes in the frame (a tab, the baseline) back into this URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from assay.console.compare_view import CompareView, split_ref

OPEN = "open"


@dataclass(frozen=True)
class DetailsTarget:
    namespace: str
    name: str
    query: str  # the details page's own query string, re-encoded (never passed through as given)


@dataclass(frozen=True)
class Panes:
    opened: str = ""  # the ``open`` parameter: NS/NAME, maybe followed by ?QUERY
    compared: CompareView | None = None

    @classmethod
    def from_query(cls, refs: Sequence[str], query: Mapping[str, str]) -> Panes:
        """``refs``: every ``e`` of the query string, as :meth:`CompareView.from_query` takes them."""
        compared = CompareView.from_query(refs, query) if any(refs) else None
        return cls(opened=query.get(OPEN, ""), compared=compared)

    def to_params(self) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = [(OPEN, self.opened)] if self.opened else []
        if self.compared is not None:
            params += parse_qsl(self.compared.to_query())
        return params

    def details(self, default_namespace: str) -> DetailsTarget | None:
        """The evaluation open beside the list, if any."""
        ref, _, query = self.opened.partition("?")
        namespace, name = split_ref(ref, default_namespace)
        if not name:
            return None
        return DetailsTarget(namespace, name, urlencode(parse_qsl(query)))

    @property
    def ticked(self) -> frozenset[str]:
        return frozenset(self.compared.refs) if self.compared is not None else frozenset()

    def opening(self, ref: str) -> Panes:
        return Panes(opened=ref, compared=self.compared)

    def closed(self, *, details: bool = False, compare: bool = False) -> Panes:
        return Panes(opened="" if details else self.opened, compared=None if compare else self.compared)


def query_string(*parts: Sequence[tuple[str, str]] | dict[str, str]) -> str:
    """One query string of several parameter sets; commas, colons and slashes stay readable."""
    pairs: list[tuple[str, str]] = []
    for part in parts:
        pairs += list(part.items()) if isinstance(part, dict) else list(part)
    return urlencode(pairs, safe=",:/")
