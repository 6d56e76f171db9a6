"""The list page's view state: URL round trip, column menu changes, filters and sorting."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from cli_samples import NOW, evaluation, running

from assay.console.viewstate import DEFAULT_COLUMNS, ListView, available_columns, cell

EVALUATIONS = [
    running("mlp-v1"),
    evaluation("cnn-v4", created="2026-11-26T11:30:00Z", summary={"accuracy": 0.97, "recall": 0.9}),
    evaluation("cnn-v3"),
]


def test_the_default_view_has_an_empty_query_and_the_list_columns():
    assert ListView.from_query({}) == ListView()
    assert ListView().to_query() == ""
    assert ListView().columns == ("name", "pool", "phase", "tasks", "result", "cost", "age")
    assert ListView.defaults(all_namespaces=True).columns[0] == "namespace"
    assert ListView.defaults(all_namespaces=True).to_query(all_namespaces=True) == ""


@pytest.mark.parametrize(
    "view",
    [
        ListView(columns=("name", "m:accuracy", "sys/duration"), pins=("m:accuracy",), sort="-m:accuracy"),
        ListView(phase="Running", pool="a100", model="mnist-cnn:v3", text="cnn, v4 & more"),
        ListView(columns=("phase", "name"), sort="age"),
        ListView(columns=("name", "m:macro avg/f1", "sys/model_version")),
    ],
)
def test_every_view_survives_its_url(view: ListView):
    query = dict(parse_qsl(view.to_query()))
    assert ListView.from_query(query) == view


def test_the_menu_hides_shows_pins_and_moves_columns():
    view = ListView()
    shown = view.toggled("m:accuracy")
    assert shown.columns == (*DEFAULT_COLUMNS, "m:accuracy")
    pinned = shown.pinned("m:accuracy")
    assert pinned.shown[0] == "m:accuracy" and pinned.pins == ("m:accuracy",)
    assert pinned.toggled("m:accuracy").pins == ()  # hidden columns are unpinned
    assert pinned.pinned("m:accuracy").pins == ()
    assert view.pinned("sys/id") == view  # only shown columns pin
    assert view.moved("pool", -1).columns[:2] == ("pool", "name")
    assert view.moved("name", -5).columns == view.columns  # stops at the edge
    assert view.moved("age", 3).columns[-1] == "age"
    assert view.reordered(["age", "name"]).columns == (
        "age",
        "name",
        "pool",
        "phase",
        "tasks",
        "result",
        "cost",
    )


def test_name_is_always_shown():
    assert "name" in ListView().toggled("name").columns
    assert ListView.from_query({"cols": "pool,phase"}).columns == ("name", "pool", "phase")


def test_pins_of_hidden_columns_are_dropped_from_the_url():
    assert ListView.from_query({"cols": "name,pool", "pin": "pool,cost"}).pins == ("pool",)


def test_sort_cycles_ascending_descending_and_back():
    view = ListView()
    assert view.sorted_by("cost").sort == "cost"
    assert view.sorted_by("cost").sorted_by("cost").sort == "-cost"
    assert view.sorted_by("cost").sorted_by("cost").sorted_by("cost").sort == ""


def test_sorting_by_a_metric_puts_empty_cells_last_both_ways():
    up = ListView(sort="m:accuracy").apply(EVALUATIONS, NOW)
    down = ListView(sort="-m:accuracy").apply(EVALUATIONS, NOW)
    assert [e.name for e in up] == ["cnn-v4", "cnn-v3", "mlp-v1"]
    assert [e.name for e in down] == ["cnn-v3", "cnn-v4", "mlp-v1"]
    assert [e.name for e in ListView().apply(EVALUATIONS, NOW)] == ["mlp-v1", "cnn-v4", "cnn-v3"]


def test_age_sorts_youngest_first_as_kubectl_reads_it():
    # cnn-v4 is 30 minutes old, the two others an hour (and keep the list's order between them).
    assert [e.name for e in ListView(sort="age").apply(EVALUATIONS, NOW)] == ["cnn-v4", "mlp-v1", "cnn-v3"]
    assert [e.name for e in ListView(sort="-age").apply(EVALUATIONS, NOW)][-1] == "cnn-v4"


def test_filters():
    assert [e.name for e in ListView(phase="running").apply(EVALUATIONS, NOW)] == ["mlp-v1"]
    assert ListView(pool="h100").apply(EVALUATIONS, NOW) == []
    assert len(ListView(model="mnist-cnn:v3").apply(EVALUATIONS, NOW)) == 3
    assert ListView(model="mnist-cnn:v4").apply(EVALUATIONS, NOW) == []
    assert [e.name for e in ListView(text="V4").apply(EVALUATIONS, NOW)] == ["cnn-v4"]
    assert len(ListView(text="mnist-test").apply(EVALUATIONS, NOW)) == 3


def test_cells_read_as_assay_list_prints_them():
    done = EVALUATIONS[2]
    assert cell(done, "result", NOW)[0] == "accuracy=0.9912"
    assert cell(done, "cost", NOW) == ("1.27 / 40.00 USD", 1.27)
    assert cell(done, "tasks", NOW)[0] == "3/3"
    assert cell(done, "age", NOW)[0] == "1h"
    assert cell(done, "model", NOW)[0] == "mnist-cnn:v3"
    assert cell(done, "m:accuracy", NOW) == ("0.9912", 0.9912)
    assert cell(done, "sys/duration", NOW) == ("150", 150)
    assert cell(EVALUATIONS[0], "m:accuracy", NOW) == ("", None)


def test_the_menu_offers_every_metric_and_sys_fact():
    columns = available_columns(EVALUATIONS)
    assert columns[:2] == ["namespace", "name"]
    assert {"m:accuracy", "m:recall", "m:macro avg/f1", "m:loss"} <= set(columns)
    assert {"sys/id", "sys/duration", "sys/cost", "sys/debug"} <= set(columns)
    assert columns.index("m:loss") < columns.index("sys/id")
