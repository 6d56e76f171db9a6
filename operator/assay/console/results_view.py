"""The Results tab's view model: which page and filter the URL asks for, and the confusion matrix as SVG
geometry (the template draws it; this module does the arithmetic)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from assay.results import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ConfusionMatrix, RowFilter

PAGE_SIZES = (25, 50, 100, 500)
CELL = 34  # pixels per matrix cell
MARGIN = 46  # room for the class names and the axis titles


def _number(raw: str | None, default: int, lowest: int, highest: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return min(max(value, lowest), highest)


@dataclass(frozen=True)
class ResultsQuery:
    """``?tab=results&offset=50&limit=50&wrong=1&label=3&prediction=5``, parsed and written back."""

    offset: int = 0
    limit: int = DEFAULT_PAGE_SIZE
    only_wrong: bool = False
    label: str | None = None
    prediction: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ResultsQuery:
        return cls(
            offset=_number(query.get("offset"), 0, 0, 10**12),
            limit=_number(query.get("limit"), DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
            only_wrong=query.get("wrong") in ("1", "on", "true"),
            label=query.get("label") or None,
            prediction=query.get("prediction") or None,
        )

    @property
    def keep(self) -> RowFilter:
        return RowFilter(only_wrong=self.only_wrong, label=self.label, prediction=self.prediction)

    @property
    def filtered(self) -> bool:
        return self.only_wrong or self.label is not None or self.prediction is not None

    def to_query(self) -> str:
        fields: dict[str, str] = {"tab": "results"}
        if self.offset:
            fields["offset"] = str(self.offset)
        if self.limit != DEFAULT_PAGE_SIZE:
            fields["limit"] = str(self.limit)
        if self.only_wrong:
            fields["wrong"] = "1"
        if self.label is not None:
            fields["label"] = self.label
        if self.prediction is not None:
            fields["prediction"] = self.prediction
        return "?" + urlencode(fields)

    def previous(self) -> str | None:
        return replace(self, offset=max(0, self.offset - self.limit)).to_query() if self.offset else None

    def next(self, more: bool) -> str | None:
        return replace(self, offset=self.offset + self.limit).to_query() if more else None

    def cell(self, label: str, prediction: str) -> str:
        """The link of a matrix cell: the records of that label predicted as that class."""
        return ResultsQuery(limit=self.limit, label=label, prediction=prediction).to_query()

    def cleared(self) -> str:
        return ResultsQuery(limit=self.limit).to_query()


@dataclass(frozen=True)
class MatrixCell:
    x: int
    y: int
    count: float
    shade: float  # 0..1 of the largest cell, for the fill's opacity
    diagonal: bool
    label: str
    prediction: str


@dataclass(frozen=True)
class MatrixPicture:
    name: str
    size: int  # width and height of the SVG
    classes: list[tuple[int, str]]  # (offset of the row/column, class name)
    cells: list[MatrixCell]
    cell: int = CELL
    margin: int = MARGIN


def matrix_picture(matrix: ConfusionMatrix) -> MatrixPicture:
    largest = matrix.largest
    cells = [
        MatrixCell(
            x=MARGIN + j * CELL,
            y=MARGIN + i * CELL,
            count=value,
            shade=value / largest,
            diagonal=i == j,
            label=matrix.classes[i],
            prediction=matrix.classes[j],
        )
        for i, row in enumerate(matrix.matrix)
        for j, value in enumerate(row)
    ]
    classes = [(MARGIN + k * CELL, name) for k, name in enumerate(matrix.classes)]
    return MatrixPicture(matrix.name, MARGIN + CELL * len(matrix.classes) + 8, classes, cells)
