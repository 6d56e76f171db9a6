"""assay.compare: rows per fact, baseline first, deltas, --only-diff, --columns, the text renderers."""

from __future__ import annotations

import csv
import io
import json

import pytest

from assay.compare import (
    CompareError,
    Subject,
    Trend,
    cell_text,
    compare,
    format_delta,
    format_value,
    to_csv,
    to_data,
    to_json,
    to_markdown,
)

A = Subject("a", {"sys/phase": "Succeeded", "sys/duration": 150.0, "accuracy": 0.90, "f1": 0.80, "tag": "x"})
B = Subject("b", {"sys/phase": "Succeeded", "sys/duration": 120.0, "accuracy": 0.95, "f1": 0.80, "tag": "y"})
C = Subject(
    "c", {"sys/phase": "Running", "sys/duration": 30.0, "accuracy": 0.85}, running=True, phase="Running"
)


def row(comparison, key):
    return next(r for r in comparison.rows if r.key == key)


def test_rows_list_metrics_first_then_sys_fields_in_the_order_first_met():
    result = compare([A, B, C])
    assert [r.key for r in result.rows] == ["accuracy", "f1", "tag", "sys/phase", "sys/duration"]
    late = Subject("d", {"zeta": 1, "alpha": 2})
    assert [r.key for r in compare([A, late]).rows][:5] == ["accuracy", "f1", "tag", "zeta", "alpha"]


def test_the_first_evaluation_is_the_default_baseline():
    result = compare([A, B, C])
    assert [s.name for s in result.subjects] == ["a", "b", "c"]
    assert row(result, "accuracy").cells[0].trend is Trend.BASELINE


def test_a_named_baseline_moves_to_the_first_column_and_deltas_follow_it():
    result = compare([A, B, C], baseline="b")
    assert [s.name for s in result.subjects] == ["b", "a", "c"]
    accuracy = row(result, "accuracy")
    assert accuracy.cells[1].trend is Trend.DOWN
    assert accuracy.cells[1].delta == pytest.approx(-0.05)
    assert accuracy.cells[2].delta == pytest.approx(-0.10)


def test_rising_falling_and_equal_numbers_and_changed_text():
    result = compare([A, B])
    assert row(result, "accuracy").cells[1].trend is Trend.UP
    assert row(result, "sys/duration").cells[1].trend is Trend.DOWN
    assert row(result, "sys/duration").cells[1].delta == -30
    assert row(result, "f1").cells[1].trend is Trend.SAME
    assert row(result, "tag").cells[1].trend is Trend.CHANGED
    assert row(result, "sys/phase").cells[1].trend is Trend.SAME


def test_a_missing_metric_is_an_empty_cell_not_an_error():
    result = compare([A, C])
    f1 = row(result, "f1")
    assert f1.cells[1].value is None
    assert f1.cells[1].trend is Trend.MISSING
    assert cell_text(f1.cells[1]) == ""


def test_a_metric_missing_from_the_baseline_has_no_delta():
    result = compare([C, A])
    f1 = row(result, "f1")
    assert f1.cells[0].trend is Trend.MISSING
    assert f1.cells[1].trend is Trend.MISSING
    assert f1.cells[1].delta is None
    assert cell_text(f1.cells[1]) == "0.8"


def test_only_diff_hides_rows_equal_everywhere_and_keeps_partly_missing_ones():
    result = compare([A, B], only_diff=True)
    assert [r.key for r in result.rows] == ["accuracy", "tag", "sys/duration"]
    with_c = compare([A, B, C], only_diff=True)
    assert "f1" in [r.key for r in with_c.rows]  # c lacks it: that is a difference


def test_integers_and_floats_of_equal_value_are_equal():
    result = compare([Subject("a", {"records": 10}), Subject("b", {"records": 10.0})], only_diff=True)
    assert result.rows == ()


def test_columns_pick_and_order_rows():
    result = compare([A, B, C], columns=["f1", "sys/duration", "accuracy"])
    assert [r.key for r in result.rows] == ["f1", "sys/duration", "accuracy"]


def test_columns_with_only_diff_combine():
    result = compare([A, B], columns=["f1", "accuracy"], only_diff=True)
    assert [r.key for r in result.rows] == ["accuracy"]


def test_a_column_no_evaluation_has_is_an_error_naming_the_known_ones():
    with pytest.raises(CompareError, match=r"'recall'; known: accuracy, f1, tag, sys/phase, sys/duration$"):
        compare([A, B], columns=["recall"])


def test_an_unknown_baseline_is_an_error():
    with pytest.raises(CompareError, match="baseline 'z' is not among"):
        compare([A, B], baseline="z")


def test_nothing_to_compare_is_an_error():
    with pytest.raises(CompareError):
        compare([])


def test_booleans_get_no_numeric_delta():
    result = compare([Subject("a", {"ok": True}), Subject("b", {"ok": False})])
    assert row(result, "ok").cells[1].trend is Trend.CHANGED
    assert row(result, "ok").cells[1].delta is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (0.9912, "0.9912"),
        (10000.0, "10000"),
        (3, "3"),
        (1 / 3, "0.333333"),
        (True, "true"),
        ("x", "x"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize(("delta", "text"), [(0.05, "+0.05"), (-30.0, "-30"), (0.0, "+0"), (1e-7, "+1e-07")])
def test_format_delta(delta, text):
    assert format_delta(delta) == text


def test_cell_text_shows_value_mark_and_delta():
    result = compare([A, B])
    assert cell_text(row(result, "accuracy").cells[1]) == "0.95 ▲+0.05"
    assert cell_text(row(result, "sys/duration").cells[1]) == "120 ▼-30"
    assert cell_text(row(result, "f1").cells[1]) == "0.8 ="
    assert cell_text(row(result, "accuracy").cells[0]) == "0.9"


def test_json_has_baseline_running_flags_and_cells():
    data = json.loads(to_json(compare([A, C])))
    assert data == to_data(compare([A, C]))
    assert data["baseline"] == "a"
    assert data["evaluations"][1] == {"name": "c", "phase": "Running", "running": True}
    accuracy = next(r for r in data["rows"] if r["key"] == "accuracy")
    assert accuracy["values"]["c"]["trend"] == "down"
    assert accuracy["values"]["c"]["delta"] == pytest.approx(-0.05)
    f1 = next(r for r in data["rows"] if r["key"] == "f1")
    assert f1["values"]["c"] == {"value": None, "trend": "missing", "delta": None}


def test_json_deltas_are_the_exact_decimal_differences_of_the_inputs():
    # 0.95 - 0.90 in binary floating point is 0.04999999999999993; the inputs' decimals differ by 0.05.
    subjects = [A, B, Subject("d", {"accuracy": 0.9912, "sys/duration": 150.25})]
    data = json.loads(to_json(compare(subjects)))
    deltas = {
        (r["key"], name): v["delta"] for r in data["rows"] for name, v in r["values"].items() if v["delta"]
    }
    assert deltas == {
        ("accuracy", "b"): 0.05,
        ("accuracy", "d"): 0.0912,
        ("sys/duration", "b"): -30,
        ("sys/duration", "d"): 0.25,
    }


def test_csv_has_a_value_and_a_delta_column_per_non_baseline_evaluation():
    text = to_csv(compare([A, B], columns=["accuracy", "f1", "tag"]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["key", "a", "b", "b delta"],
        ["accuracy", "0.9", "0.95", "+0.05"],
        ["f1", "0.8", "0.8", "+0"],
        ["tag", "x", "y", ""],
    ]


def test_markdown_marks_baseline_and_running_columns_and_escapes_pipes():
    pipe = Subject("p", {"sys/phase": "Succeeded", "note": "a|b"})
    text = to_markdown(compare([pipe, C], columns=["note", "sys/phase"]))
    lines = text.splitlines()
    assert lines[0] == "| key | p (baseline) | c [Running] |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == "| note | a\\|b |  |"
    assert lines[3] == "| sys/phase | Succeeded | Running |"  # text gets no marks
