"""assay.cli.columns: the fast table prints exactly what rich's box-less Table printed for the same cells."""

from __future__ import annotations

import pytest
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from assay.cli.columns import ColumnTable


def render(renderable: RenderableType) -> str:
    console = Console(width=250, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable, crop=False)
    return console.export_text()


def test_the_same_text_as_a_boxless_rich_table():
    headers = ("NAMESPACE", "NAME", "PHASE", "AGE")
    rows = [
        ("team-a", "cnn-v3-on-test", Text("Succeeded", style="green"), "3d"),
        ("b", "日本語-名前", Text("Failed", style="red"), "12m30s"),
        ("", "x", Text(""), ""),
    ]
    expected = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    fast = ColumnTable(*headers)
    for header in headers:
        expected.add_column(header, no_wrap=True)
    for row in rows:
        expected.add_row(*row)
        fast.add_row(*row)
    assert render(fast) == render(expected)
    assert render(fast).splitlines()[0] == "NAMESPACE  NAME            PHASE      AGE   "


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="a row of 1 cells in a table of 2 columns"):
        ColumnTable("A", "B").add_row("only")
