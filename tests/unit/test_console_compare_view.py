"""The compare page's model: references, baseline, "only rows that differ", the URL round trip."""

from __future__ import annotations

from cli_samples import NOW, evaluation, running

from assay.compare import Trend
from assay.console.compare_view import CompareView, bar_fractions, split_ref

V3 = evaluation("cnn-v3")
V4 = evaluation("cnn-v4", summary={"accuracy": 0.97, "macro avg/f1": 0.991, "loss": 0.02})
MLP = running("mlp-v1")


def test_references_name_a_namespace_or_default_to_the_consoles():
    assert split_ref("team-b/cnn-v3", "team-a") == ("team-b", "cnn-v3")
    assert split_ref("cnn-v3", "team-a") == ("team-a", "cnn-v3")


def test_the_url_round_trip_keeps_order_baseline_and_toggle():
    view = CompareView(("team-a/cnn-v3", "team-a/cnn-v4"), baseline="team-a/cnn-v4", only_diff=True)
    query = view.to_query()
    assert query == "e=team-a/cnn-v3&e=team-a/cnn-v4&base=team-a/cnn-v4&diff=1"
    assert (
        CompareView.from_query(["team-a/cnn-v3", "team-a/cnn-v4"], {"base": "team-a/cnn-v4", "diff": "1"})
        == view
    )
    assert CompareView.from_query(["a", "a", ""], {}).refs == ("a",)


def test_one_row_per_metric_and_sys_fact_with_deltas_against_the_first():
    view = CompareView(("team-a/cnn-v3", "team-a/cnn-v4", "team-a/mlp-v1"))
    comparison = view.comparison([V3, V4, MLP], NOW)
    assert [s.name for s in comparison.subjects] == ["cnn-v3", "cnn-v4", "mlp-v1"]
    rows = {row.key: row for row in comparison.rows}
    assert list(rows)[:3] == ["accuracy", "macro avg/f1", "loss"]
    assert "sys/duration" in rows and "sys/pool" in rows
    accuracy = rows["accuracy"].cells
    assert accuracy[1].trend is Trend.DOWN and round(accuracy[1].delta or 0, 4) == -0.0212
    assert accuracy[2].trend is Trend.MISSING


def test_the_baseline_changes_with_one_reference():
    view = CompareView(("team-a/cnn-v3", "team-a/cnn-v4"), baseline="team-a/cnn-v4")
    comparison = view.comparison([V3, V4], NOW)
    assert comparison.baseline.name == "cnn-v4"
    assert view.ref_of(comparison, 0) == "team-a/cnn-v4" and view.ref_of(comparison, 1) == "team-a/cnn-v3"
    accuracy = comparison.rows[0].cells
    assert accuracy[1].trend is Trend.UP


def test_only_rows_that_differ():
    comparison = CompareView(("team-a/cnn-v3", "team-a/cnn-v4"), only_diff=True).comparison([V3, V4], NOW)
    keys = [row.key for row in comparison.rows]
    assert "accuracy" in keys and "macro avg/f1" not in keys and "sys/pool" not in keys


def test_evaluations_of_several_namespaces_are_named_by_their_reference():
    other = evaluation("cnn-v3")
    other = other.model_copy(update={"metadata": other.metadata.model_copy(update={"namespace": "team-b"})})
    view = CompareView(("team-a/cnn-v3", "team-b/cnn-v3"), baseline="team-b/cnn-v3")
    comparison = view.comparison([V3, other], NOW)
    assert [s.name for s in comparison.subjects] == ["team-b/cnn-v3", "team-a/cnn-v3"]
    assert view.ref_of(comparison, 0) == "team-b/cnn-v3"


def test_metric_rows_get_bars_against_the_largest_value():
    comparison = CompareView(("team-a/cnn-v3", "team-a/cnn-v4", "team-a/mlp-v1")).comparison(
        [V3, V4, MLP], NOW
    )
    rows = {row.key: row for row in comparison.rows}
    loss = bar_fractions(rows["loss"])
    assert loss is not None and loss[0] == 1.0 and round(loss[1] or 0, 3) == round(0.02 / 0.031, 3)
    assert loss[2] is None  # mlp-v1 has no loss yet
    assert bar_fractions(rows["sys/duration"]) is None  # facts, not metrics
    assert bar_fractions(rows["sys/model"]) is None
