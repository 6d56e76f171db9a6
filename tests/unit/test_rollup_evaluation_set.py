"""The EvaluationSet planner: combinations, admission problems, what to create, the status and the table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from assay.api import EvaluationSet, EvaluationSpec
from assay.render.names import set_child_name
from assay.rollup.evaluation_set import Child, child_evaluation, expand, plan_set, set_problems

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def model(version: str) -> dict[str, str]:
    return {"name": "svc", "version": version, "uri": f"file:///models/svc-{version}"}


def dataset(name: str) -> dict[str, str]:
    return {"name": name, "uri": f"file:///data/{name}"}


def make_set(name: str = "digits", **spec: Any) -> EvaluationSet:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "team", "uid": "set-uid", "generation": 1},
        "spec": {
            "template": {"spec": {"pool": "cpu", "handler": "h:E", "runtime": {"image": "img:1"}}},
            "matrix": {"model": [model("v1"), model("v2")], "dataset": [dataset("test"), dataset("noisy")]},
            **spec,
        },
    }
    return EvaluationSet.model_validate(body)


def names(evaluation_set: EvaluationSet) -> list[str]:
    return [c.child for c in expand(evaluation_set.spec, evaluation_set.name)]


def test_the_product_in_order_with_distinct_deterministic_names() -> None:
    combos = expand(make_set().spec, "digits")
    assert [c.title for c in combos] == [
        "svc@v1 / test", "svc@v1 / noisy", "svc@v2 / test", "svc@v2 / noisy",
    ]  # fmt: skip
    assert len({c.child for c in combos}) == 4
    assert all(c.child.startswith("digits-") for c in combos)
    assert names(make_set()) == names(make_set())


def test_exclude_drops_matching_combinations_and_include_adds_new_ones() -> None:
    evaluation_set = make_set(
        matrix={
            "model": [model("v1"), model("v2")],
            "dataset": [dataset("test"), dataset("noisy")],
            "exclude": [{"model": model("v1"), "dataset": dataset("noisy")}],
            "include": [
                {"model": model("v3"), "dataset": dataset("test")},
                {"model": model("v2"), "dataset": dataset("test")},
            ],
        }
    )
    titles = [c.title for c in expand(evaluation_set.spec, "digits")]
    assert titles == ["svc@v1 / test", "svc@v2 / test", "svc@v2 / noisy", "svc@v3 / test"]


def test_a_child_is_a_valid_evaluation_owned_by_the_set_and_labelled() -> None:
    evaluation_set = make_set(suspend=True)
    combo = expand(evaluation_set.spec, evaluation_set.name)[0]
    child = child_evaluation(evaluation_set, combo)
    spec = EvaluationSpec.model_validate(child["spec"])
    assert (spec.model.version, spec.dataset.name, spec.pool, spec.suspend) == ("v1", "test", "cpu", True)
    assert child["metadata"]["ownerReferences"][0]["uid"] == "set-uid"
    labels = child["metadata"]["labels"]
    assert labels["assay.dev/evaluation-set"] == "digits"
    assert (labels["assay.dev/model"], labels["assay.dev/dataset"]) == ("svc-v1", "test")


def test_child_names_stay_valid_for_a_253_character_set_name() -> None:
    long_name = "a" * 120 + "." + "b" * 132
    child_names = names(make_set(long_name))
    assert len(set(child_names)) == 4
    assert all(len(n) <= 253 and n[0].isalnum() and n[-1].isalnum() for n in child_names)
    assert set_child_name(long_name, "x") != set_child_name(long_name[:-1] + "c", "x")


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        ({"matrix": {"model": [model("v1")]}}, "dataset"),  # no dataset anywhere
        ({"baseline": {"model": "svc@v9"}}, "baseline model: 'svc@v9' is not in the matrix"),
        ({"matrix": {"model": [model("v1"), model("v1")], "dataset": [dataset("t")]}}, "share a key"),
        (
            {
                "matrix": {
                    "model": [model("v1")],
                    "dataset": [dataset("t")],
                    "exclude": [{"model": model("v1")}],
                }
            },
            "no combination",
        ),
    ],
)
def test_problems_say_what_to_fix(spec: dict[str, Any], wanted: str) -> None:
    problems = set_problems(make_set(**spec).spec)
    assert any(wanted in p for p in problems), problems


def test_a_valid_set_has_no_problems() -> None:
    assert set_problems(make_set(baseline={"model": "svc@v1"}).spec) == []


def test_parallelism_bounds_the_unfinished_children() -> None:
    evaluation_set = make_set(parallelism=2)
    all_names = names(evaluation_set)
    first = plan_set(evaluation_set, {}, [], NOW)
    assert [c.child for c in first.create] == all_names[:2]
    # Created but not in the index yet: they count, nothing more is created.
    assert plan_set(evaluation_set, {}, all_names[:2], NOW).create == []
    one_done = {all_names[0]: Child(all_names[0], "Succeeded"), all_names[1]: Child(all_names[1], "Running")}
    assert [c.child for c in plan_set(evaluation_set, one_done, [], NOW).create] == [all_names[2]]


def test_max_failed_stops_creation_and_fails_the_set_naming_the_children() -> None:
    evaluation_set = make_set(parallelism=1, maxFailed=1)
    first = names(evaluation_set)[0]
    plan = plan_set(evaluation_set, {first: Child(first, "Failed")}, [], NOW)
    assert plan.create == []
    assert plan.status.phase == "Failed"
    assert first in (plan.status.message or "")
    assert any(c.type == "Failed" and c.is_true for c in plan.status.conditions)


def test_suspend_and_cancel_reach_unfinished_children_only() -> None:
    all_names = names(make_set())
    children = {all_names[0]: Child(all_names[0], "Running"), all_names[1]: Child(all_names[1], "Succeeded")}
    suspended = plan_set(make_set(suspend=True), children, [], NOW)
    assert (suspended.create, suspended.suspend, suspended.status.phase) == (
        [],
        {all_names[0]: True},
        "Suspended",
    )
    cancelled = plan_set(make_set(cancel=True), children, [], NOW)
    assert (cancelled.create, cancelled.cancel, cancelled.status.phase) == ([], [all_names[0]], "Cancelled")


def test_the_table_cost_and_best_come_from_the_children() -> None:
    evaluation_set = make_set(baseline={"model": "svc@v1"}, objective={"metric": "accuracy"})
    accuracy = {"svc@v1 / test": 0.9, "svc@v1 / noisy": 0.7, "svc@v2 / test": 0.95, "svc@v2 / noisy": 0.6}
    children = {
        c.child: Child(c.child, "Succeeded", summary={"accuracy": accuracy[c.title]},
                       cost={"currency": "USD", "accrued": "0.25", "estimatedMax": "1.00"})
        for c in expand(evaluation_set.spec, evaluation_set.name)
    }  # fmt: skip
    status = plan_set(evaluation_set, children, [], NOW).status
    assert status.phase == "Succeeded" and status.progress == "4/4"
    assert status.cost is not None and (status.cost.accrued, status.cost.estimated_max) == ("1.00", "4.00")
    assert status.best is not None and status.best.combination == "svc@v2 / test"
    table = status.table
    assert table is not None and table.metric == "accuracy" and table.columns == ["svc@v1", "svc@v2"]
    cells = {(row.dataset, cell.column): cell for row in table.rows for cell in row.cells}
    assert cells["test", "svc@v1"].baseline and cells["test", "svc@v1"].delta is None
    assert cells["test", "svc@v2"].delta == pytest.approx(0.05)
    assert cells["noisy", "svc@v2"].delta == pytest.approx(-0.1)


def test_an_unchanged_world_gives_an_equal_status() -> None:
    evaluation_set = make_set()
    first = plan_set(evaluation_set, {}, [], NOW).status
    again = plan_set(evaluation_set.model_copy(update={"status": first}), {}, [], datetime.now(UTC)).status
    assert again == first
