"""``assay results``: one page of an evaluation's per-record results, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from assay.cli.options import (
    KubectlFlags,
    Namespace,
    console,
    reports_errors,
    show,
    takes_kubectl_flags,
)
from assay.errors import Invalid
from assay.results import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ResultsPage, read_results


class ResultsFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def results_table(page: ResultsPage) -> Table:
    first, last = page.offset + 1, page.offset + len(page.rows)
    which = "wrong records" if page.only_wrong else "records"
    more = ", more follow (--offset)" if page.more else ""
    total = f" of {page.records}" if page.records is not None and not page.only_wrong else ""
    table = Table(caption=f"{which} {first}..{last}{total}{more}" if page.rows else f"no {which}")
    table.add_column("record", justify="right")
    if page.labelled:
        table.add_column("label")
    table.add_column("prediction")
    if page.labelled:
        table.add_column("correct")
    for row in page.rows:
        cells = [str(row.index)]
        if page.labelled:
            cells.append(_cell(row.label) if row.has_label else "")
        cells.append(_cell(row.prediction))
        if page.labelled:
            cells.append({True: "yes", False: "NO", None: ""}[row.correct])
        table.add_row(*cells)
    return table


def results_json(page: ResultsPage) -> str:
    body = {
        "location": page.location,
        "records": page.records,
        "offset": page.offset,
        "limit": page.limit,
        "onlyWrong": page.only_wrong,
        "more": page.more,
        "rows": [row.as_dict() for row in page.rows],
        "metrics": page.metrics,
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def results_csv(page: ResultsPage) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["record", "label", "prediction", "correct"])
    for row in page.rows:
        correct = "" if row.correct is None else str(row.correct).lower()
        label = _cell(row.label) if row.has_label else ""
        writer.writerow([row.index, label, _cell(row.prediction), correct])
    return text.getvalue()


@reports_errors
@takes_kubectl_flags
def show_results(
    name: Annotated[str | None, typer.Argument(help="Name of the evaluation.", show_default=False)] = None,
    only_wrong: Annotated[
        bool, typer.Option("--only-wrong", help="Only records whose prediction differs from the label.")
    ] = False,
    offset: Annotated[int, typer.Option(help="Skip this many (shown) records.", min=0)] = 0,
    limit: Annotated[
        int, typer.Option(help="Show at most this many records.", min=1, max=MAX_PAGE_SIZE)
    ] = DEFAULT_PAGE_SIZE,
    location: Annotated[
        str | None,
        typer.Option(
            "--location",
            help="Read an output directly instead of an evaluation's (a path such as assay run --local's "
            "output, file:// or s3://).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        ResultsFormat, typer.Option("--output", "-o", help="Output format.", case_sensitive=False)
    ] = ResultsFormat.TABLE,
    namespace: Namespace = None,
    *,
    kubectl: KubectlFlags,
) -> None:
    """Show an evaluation's per-record results: record, label, prediction and whether they agree.

    Read from the evaluation's output (status.results.location): a pvc:// output through a short-lived
    reader pod in its namespace, which is deleted afterwards. Pages through large outputs with --offset and
    --limit; the report's extra metrics are in -o json.

    Example: assay results digits-svc --only-wrong --limit 20
    """
    if (name is None) == (location is None):
        raise Invalid("give an evaluation NAME or --location, not both or neither")
    if location is not None:
        page = read_results(location, offset=offset, limit=limit, only_wrong=only_wrong)
    else:
        assert name is not None
        with kubectl.client(namespace) as client:
            page = client.results(name, only_wrong=only_wrong, offset=offset, limit=limit)
    out = console()
    if output is ResultsFormat.TABLE:
        show(out, results_table(page))
        return
    out.out(results_json(page) if output is ResultsFormat.JSON else results_csv(page), end="")
