"""Per-task status (assay.rollup.tasks): attempts that the Job controller replaced, skipped steps."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from test_rollup_evaluation import after, job, make_evaluation, plan, pod

from assay.api import Phase, TaskPhase
from assay.attempts import attempts_from_pods
from assay.cli import views
from assay.contract import Step

FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"


def replacement(raw: dict[str, Any], *, failures: int = 0, ignored: int = 0) -> dict[str, Any]:
    """A pod as the Job controller creates it in place of earlier ones: it counts them in annotations
    (failures that used up a retry, and those podFailurePolicy ignored: evictions, preemptions)."""
    annotations = raw["metadata"]["annotations"]
    annotations[FAILURE_COUNT] = str(failures)
    if ignored:
        annotations[IGNORED_FAILURE_COUNT] = str(ignored)
    return raw


def test_an_evicted_attempt_whose_pod_is_gone_still_counts() -> None:
    pods = [replacement(pod(Step.PREDICT, 0, "Running", attempt=1), ignored=1)]
    p = plan(make_evaluation(), [job(Step.PREDICT)], pods)
    assert p.status.tasks[0].attempts == 2


def test_failed_and_evicted_attempts_add_up() -> None:
    pods = [replacement(pod(Step.PREDICT, 1, "Running", attempt=3), failures=1, ignored=2)]
    p = plan(make_evaluation(), [job(Step.PREDICT)], pods)
    assert p.status.tasks[1].attempts == 4


def test_attempts_are_numbered_from_the_job_controllers_counts() -> None:
    pods = [replacement(pod(Step.PREDICT, 0, "Running", attempt=1), ignored=1)]
    (attempt,) = attempts_from_pods(pods)
    assert attempt.attempt == 2


def test_after_a_failed_predict_the_evaluate_step_is_skipped() -> None:
    pods = [
        pod(Step.PREDICT, 0, "Succeeded", finished=20),
        pod(Step.PREDICT, 1, "Failed", exit_code=12, finished=20),
    ]
    jobs = [job(Step.PREDICT, failed="FailedIndexes", failed_indexes="1", at=20)]
    p = plan(make_evaluation(), jobs, pods, now=25)
    assert p.phase == Phase.FAILED
    evaluate = p.status.tasks[-1]
    assert (evaluate.step, evaluate.phase, evaluate.reason) == (
        Step.EVALUATE,
        TaskPhase.SKIPPED,
        "PredictFailed",
    )
    assert evaluate.message == "not run: predict task 1 failed"
    counts = p.status.task_counts
    assert counts is not None
    assert (counts.pending, counts.failed, counts.succeeded, counts.skipped) == (0, 1, 1, 1)


def test_while_predict_runs_the_evaluate_step_waits_for_it() -> None:
    pods = [pod(Step.PREDICT, 0, "Running"), pod(Step.PREDICT, 1, "Running")]
    ev = make_evaluation()
    p = plan(ev, [job(Step.PREDICT)], pods)
    again = plan(after(ev, p), [job(Step.PREDICT)], pods)
    evaluate = again.status.tasks[-1]
    assert (evaluate.phase, evaluate.reason) == (TaskPhase.PENDING, "WaitingForPredict")


def test_assay_tasks_shows_the_skipped_evaluate_step_as_the_status_does() -> None:
    pods = [pod(Step.PREDICT, 0, "Failed", exit_code=12, finished=20), pod(Step.PREDICT, 1, "Running")]
    jobs = [job(Step.PREDICT, failed="FailedIndexes", failed_indexes="0", at=20)]
    p = plan(make_evaluation(), jobs, pods, now=25)
    rows = views.task_rows(p.status.tasks, attempts_from_pods(pods), now=p.status.completion_time)
    console = Console(width=200, record=True)
    console.print(views.tasks_table(rows))
    evaluate = console.export_text().splitlines()[-1].split()
    assert evaluate == ["evaluate", "0", "Skipped", "PredictFailed"]
