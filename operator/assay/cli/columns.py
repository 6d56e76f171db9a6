"""A kubectl-style table drawn one line of text per row: the long listings (``assay list``) print fast.

It prints what rich's ``Table(box=None, pad_edge=False, show_edge=False)`` of no-wrap columns prints, a bold
header then each row, cells left-aligned in columns two spaces apart, but rich measures, pads and crops every
cell as its own renderable: 0.4 s for 200 rows, most of ``assay list``'s time. Here each row is one
:class:`~rich.text.Text` assembled from its cells (their styles kept).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.text import Text

GAP = "  "


class ColumnTable:
    """Columns of one-line cells under a bold header; the table is as wide as its widest cells."""

    def __init__(self, *headers: str) -> None:
        self.headers = [Text(header, style="bold") for header in headers]
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: str | Text) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"a row of {len(cells)} cells in a table of {len(self.headers)} columns")
        self.rows.append([cell if isinstance(cell, Text) else Text(cell) for cell in cells])

    def _widths(self) -> list[int]:
        return [max(row[i].cell_len for row in (self.headers, *self.rows)) for i in range(len(self.headers))]

    def _width(self) -> int:
        return sum(self._widths()) + len(GAP) * (len(self.headers) - 1)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self._width(), self._width())

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        widths = self._widths()
        for row in (self.headers, *self.rows):
            yield _line(row, widths)


def _line(cells: Sequence[Text], widths: Sequence[int]) -> Text:
    line = Text(no_wrap=True, overflow="ignore", end="\n")
    for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        if i:
            line.append(GAP)
        line.append_text(cell)
        line.append(" " * (width - cell.cell_len))
    return line
