"""A large Evaluation's status stays small: succeeded predict tasks are counted, not listed one by one."""

from __future__ import annotations

from test_rollup_evaluation import T0, after, job, make_evaluation, plan, pod

from assay.api import EvaluationStatus, TaskPhase, format_index_ranges, parse_index_ranges
from assay.cli import views
from assay.contract import Step
from assay.rollup import is_progress_only, status_changes

TASKS = 150
DONE = 120  # predict tasks 0-119 succeeded (each ran 10 s), 120-149 are running


def scenario() -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    pods = [pod(Step.PREDICT, i, "Succeeded", started=0, finished=10) for i in range(DONE)]
    pods += [pod(Step.PREDICT, i, "Running", started=0) for i in range(DONE, TASKS)]
    return [job(Step.PREDICT, completed_indexes=f"0-{DONE - 1}")], pods


def test_succeeded_predict_tasks_of_a_large_evaluation_are_not_listed() -> None:
    jobs, pods = scenario()
    p = plan(make_evaluation(tasks=TASKS), jobs, pods)
    listed = [(t.step, t.index) for t in p.status.tasks]
    assert listed == [(Step.PREDICT, i) for i in range(DONE, TASKS)] + [(Step.EVALUATE, 0)]
    assert p.status.succeeded_tasks is not None
    assert p.status.succeeded_tasks.predict == "0-119"
    assert p.status.succeeded_tasks.task_seconds == DONE * 10
    counts = p.status.task_counts
    assert counts is not None and (counts.total, counts.succeeded, counts.running) == (TASKS + 1, DONE, 30)
    # 120 tasks x 10 s + 30 running tasks x 10 s (up to the latest observation) at 3.60 per GPU-hour
    assert p.status.cost is not None and p.status.cost.accrued == "1.50"


def test_unlisted_successes_survive_their_pods_and_the_status_does_not_change() -> None:
    jobs, pods = scenario()
    ev = make_evaluation(tasks=TASKS)
    first = plan(ev, jobs, pods)
    assert plan(after(ev, first), jobs, pods).status == first.status  # no write loop
    running_only = pods[DONE:]
    later = plan(after(ev, first), [job(Step.PREDICT)], running_only)  # pods and the Job's memory gone
    assert later.status.succeeded_tasks == first.status.succeeded_tasks
    assert later.status.task_counts == first.status.task_counts
    assert later.status.cost == first.status.cost


def test_every_task_lists_the_unlisted_successes_for_the_cli_and_the_sdk() -> None:
    jobs, pods = scenario()
    status = plan(make_evaluation(tasks=TASKS), jobs, pods).status
    every = status.every_task()
    assert [(t.step, t.index) for t in every] == [(Step.PREDICT, i) for i in range(TASKS)] + [
        (Step.EVALUATE, 0)
    ]
    assert {t.phase for t in every[:DONE]} == {TaskPhase.SUCCEEDED}
    assert EvaluationStatus().every_task() == []


def test_small_evaluations_list_every_task() -> None:
    pods = [pod(Step.PREDICT, i, "Succeeded", finished=10) for i in range(2)]
    p = plan(make_evaluation(tasks=2), [job(Step.PREDICT, complete=True)], pods)
    assert len(p.status.tasks) == 3 and p.status.succeeded_tasks is None


def test_index_ranges() -> None:
    assert format_index_ranges({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert format_index_ranges(set()) == ""
    assert parse_index_ranges("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert parse_index_ranges(" 3, x,") == {3}


def test_assay_tasks_shows_a_row_for_every_task() -> None:
    jobs, pods = scenario()
    status = plan(make_evaluation(tasks=TASKS), jobs, pods).status
    rows = views.task_rows(status.every_task(), [], now=T0)
    assert len(rows) == TASKS + 1
    assert [rows[0][0], rows[0][1], str(rows[0][3])] == ["predict", "0", "Succeeded"]
    assert [rows[DONE][1], str(rows[DONE][3])] == [str(DONE), "Running"]


def test_a_task_leaving_the_list_is_progress_whose_write_may_wait() -> None:
    jobs, pods = scenario()
    ev = make_evaluation(tasks=TASKS)
    first = plan(ev, jobs, pods)
    more = [*pods[:DONE], pod(Step.PREDICT, DONE, "Succeeded", finished=10), *pods[DONE + 1 :]]
    later = plan(after(ev, first), jobs, more)
    stored = first.status.to_api()
    patch = status_changes(stored, later.status)
    assert patch is not None and patch["succeededTasks"]["predict"] == "0-120"
    assert is_progress_only(stored, patch)
