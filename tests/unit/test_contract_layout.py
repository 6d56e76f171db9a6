"""The step layout and output location of :mod:`assay.contract`, the one place that decides them.

The rule: more than one task runs one predict task per shard, then one evaluate task; one task runs a
single task of step ``all``. The expected values below are written from that rule.
"""

from __future__ import annotations

import pytest

from assay.contract import (
    STEP_ORDER,
    Step,
    TaskEnvironment,
    final_step,
    first_step,
    output_uri,
    step_task_count,
    steps_for,
    task_slots,
)

P, E, A = Step.PREDICT, Step.EVALUATE, Step.ALL


@pytest.mark.parametrize(
    ("tasks", "steps"),
    [(1, (A,)), (2, (P, E)), (7, (P, E)), (1000, (P, E))],
)
def test_steps_for_more_than_one_task_are_predict_then_evaluate(tasks: int, steps: tuple[Step, ...]) -> None:
    assert steps_for(tasks) == steps
    assert first_step(tasks) == steps[0]
    assert final_step(tasks) == steps[-1]


def test_a_single_task_both_starts_and_reports() -> None:
    assert first_step(1) == final_step(1) == A


@pytest.mark.parametrize("tasks", [0, -1])
def test_an_evaluation_without_tasks_has_no_layout(tasks: int) -> None:
    with pytest.raises(ValueError, match="at least one task"):
        steps_for(tasks)


@pytest.mark.parametrize(
    ("step", "tasks", "count"),
    [(P, 2, 2), (P, 5, 5), (E, 5, 1), (A, 1, 1)],
)
def test_predict_runs_one_task_per_shard_the_other_steps_one(step: Step, tasks: int, count: int) -> None:
    assert step_task_count(step, tasks) == count


def test_task_slots_list_the_shards_then_the_evaluate_step() -> None:
    assert task_slots(1) == [(A, 0)]
    assert task_slots(2) == [(P, 0), (P, 1), (E, 0)]
    assert task_slots(4) == [(P, 0), (P, 1), (P, 2), (P, 3), (E, 0)]


@pytest.mark.parametrize("tasks", [2, 3, 64])
def test_an_evaluation_of_n_tasks_has_n_plus_one_task_entries(tasks: int) -> None:
    slots = task_slots(tasks)
    assert len(slots) == tasks + 1
    assert len(set(slots)) == len(slots)


def test_step_order_puts_predict_before_evaluate_for_steps_and_their_names() -> None:
    assert STEP_ORDER[P] < STEP_ORDER[E]
    assert STEP_ORDER["predict"] < STEP_ORDER["evaluate"]  # as read back from a pod label
    assert set(STEP_ORDER) == set(Step)
    shuffled = [(E, 0), (P, 2), (P, 0), (P, 1)]
    assert sorted(shuffled, key=lambda slot: (STEP_ORDER[slot[0]], slot[1])) == task_slots(3)


@pytest.mark.parametrize(
    ("step", "tasks", "stays_up"),
    [(A, 1, True), (E, 2, True), (E, 8, True), (P, 2, False), (P, 8, False)],
)
def test_in_debug_mode_only_the_final_steps_task_stays_up_after_its_work(
    step: Step, tasks: int, stays_up: bool
) -> None:
    """An earlier step's pod that stayed up would keep its Job from completing: the next step never starts."""
    env = TaskEnvironment(
        step=step, model_uri="m", handler="h:H", dataset_uri="d", task_count=tasks, debug=True
    )
    assert env.stays_up_after_work is stays_up
    assert not TaskEnvironment(
        step=step, model_uri="m", handler="h:H", dataset_uri="d", task_count=tasks
    ).stays_up_after_work


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        (None, "pvc://results/team-a/mnist"),
        ("", "pvc://results/team-a/mnist"),
        ("runs/mnist", "pvc://results/runs/mnist"),
        ("runs/mnist/", "pvc://results/runs/mnist"),
    ],
)
def test_output_uri_defaults_to_one_directory_per_evaluation(path: str | None, uri: str) -> None:
    assert output_uri("results", path, "team-a", "mnist") == uri
