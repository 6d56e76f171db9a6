"""rollup.rules.outcome: a failed Job fails the Evaluation; the final Job complete makes it Succeeded with
its pod's summary (or Failed: ResultsUnreadable); each waits a grace period for the pod that explains it."""

from __future__ import annotations

from datetime import timedelta

from rollup_rules import accepted, recorded
from test_rollup_evaluation import T0, job, make_evaluation, pod

from assay.api import ConditionType, Phase, TaskPhase, TaskStatus
from assay.contract import Step, failure_message, result_message
from assay.rollup.plan import Plan
from assay.rollup.rules.context import AcceptedContext
from assay.rollup.rules.outcome import WaitForReport, describe_failure, failed, succeeded

RUNNING = {"phase": "Running"}
PREDICTED = [job(Step.PREDICT, complete=True, at=20)]
PREDICT_PODS = [pod(Step.PREDICT, i, "Succeeded", finished=20) for i in (0, 1)]


def decide(rule, ctx):  # type: ignore[no-untyped-def]
    return rule(ctx, ctx.tasks(stopped=False))


def test_describe_failure_names_the_task_its_attempts_exit_code_and_reason() -> None:
    task = TaskStatus(
        step=Step.PREDICT, index=4, phase=TaskPhase.FAILED, attempts=3, exit_code=2, reason="HandlerFailed",
        message="KeyError: 'text'",
    )  # fmt: skip
    assert describe_failure(task) == (
        "task predict/4 failed after 3 attempt(s) with exit code 2 (HandlerFailed): KeyError: 'text'"
    )
    bare = TaskStatus(step=Step.ALL, index=0, phase=TaskPhase.FAILED, attempts=1)
    assert describe_failure(bare) == "task all/0 failed after 1 attempt(s) with no exit code"


def test_no_failed_job_no_failure() -> None:
    assert decide(failed, accepted(make_evaluation(RUNNING), [job(Step.PREDICT)])) is None


def test_a_failed_job_without_its_pod_waits_for_the_report_then_fails_with_the_jobs_message() -> None:
    broken = [job(Step.PREDICT, failed="BackoffLimitExceeded", at=50)]
    assert decide(failed, accepted(make_evaluation(RUNNING), broken, now=55)) == WaitForReport(
        T0 + timedelta(seconds=60)
    )
    ctx = accepted(make_evaluation(RUNNING), broken, now=60)
    plan = decide(failed, ctx)
    assert isinstance(plan, Plan)
    assert plan.phase == Phase.FAILED
    assert plan.status.message == "Job ev-predict failed: no message"
    assert recorded(ctx, ConditionType.FAILED) == ("True", "TaskFailed", "Job ev-predict failed: no message")
    assert recorded(ctx, ConditionType.RUNNING) == (
        "False",
        "TaskFailed",
        "Job ev-predict failed: no message",
    )


def test_a_failed_task_fails_the_evaluation_at_once() -> None:
    broken = [job(Step.PREDICT, failed="FailedIndexes", failed_indexes="0", at=50)]
    pods = [pod(Step.PREDICT, 0, "Failed", exit_code=7), pod(Step.PREDICT, 1, "Running")]
    plan = decide(failed, accepted(make_evaluation(RUNNING), broken, pods, now=51))
    assert isinstance(plan, Plan)
    assert plan.phase == Phase.FAILED
    assert (plan.status.message or "").startswith("task predict/0 failed after 1 attempt(s) with exit code 7")


def test_no_complete_final_job_no_success() -> None:
    assert decide(succeeded, accepted(make_evaluation(RUNNING), PREDICTED, PREDICT_PODS)) is None


def test_the_final_pods_result_decides_before_its_job_is_marked_complete() -> None:
    final = pod(Step.EVALUATE, 0, "Succeeded", finished=40, message=result_message({"accuracy": 0.9}))
    jobs = [*PREDICTED, job(Step.EVALUATE)]
    plan = decide(succeeded, accepted(make_evaluation(RUNNING), jobs, [*PREDICT_PODS, final], now=41))
    assert isinstance(plan, Plan)
    assert plan.phase == Phase.SUCCEEDED
    assert plan.status.results is not None and plan.status.results.summary == {"accuracy": 0.9}


def test_a_final_pod_without_a_readable_result_waits_for_its_job() -> None:
    """Unreadable results are decided only once the Job is complete (the message may still be on its way)."""
    final = pod(Step.EVALUATE, 0, "Succeeded", finished=40, message="not json")
    for final_pod in (final, pod(Step.EVALUATE, 0, "Running")):
        ctx = accepted(
            make_evaluation(RUNNING), [*PREDICTED, job(Step.EVALUATE)], [*PREDICT_PODS, final_pod], now=41
        )
        assert decide(succeeded, ctx) is None


def evaluated(final_message: str) -> AcceptedContext:
    """The evaluate Job complete at 40 s, its pod succeeded with ``final_message``."""
    final = pod(Step.EVALUATE, 0, "Succeeded", finished=40, message=final_message)
    jobs = [*PREDICTED, job(Step.EVALUATE, complete=True, at=40)]
    return accepted(make_evaluation(RUNNING), jobs, [*PREDICT_PODS, final])


def test_the_final_pods_summary_makes_it_succeeded() -> None:
    ctx = evaluated(result_message({"accuracy": 0.75}, 12))
    plan = decide(succeeded, ctx)
    assert isinstance(plan, Plan)
    assert plan.phase == Phase.SUCCEEDED
    assert plan.status.message == "all 3 task(s) succeeded"
    assert plan.status.results is not None
    assert (plan.status.results.summary, plan.status.results.records) == ({"accuracy": 0.75}, 12)
    assert recorded(ctx, ConditionType.SUCCEEDED) == ("True", "AllTasksSucceeded", "all 3 task(s) succeeded")


def test_a_complete_final_job_whose_pod_is_never_seen_has_unreadable_results() -> None:
    jobs = [*PREDICTED, job(Step.EVALUATE, complete=True, at=40)]
    assert decide(succeeded, accepted(make_evaluation(RUNNING), jobs, PREDICT_PODS, now=45)) == WaitForReport(
        T0 + timedelta(seconds=50)
    )
    ctx = accepted(make_evaluation(RUNNING), jobs, PREDICT_PODS, now=50)
    plan = decide(succeeded, ctx)
    assert isinstance(plan, Plan)
    assert plan.phase == Phase.FAILED
    message = "results unreadable: the pod of the final step is gone; its termination message cannot be read"
    assert plan.status.message == message
    assert recorded(ctx, ConditionType.RESULTS_UNREADABLE) == ("True", "ResultsUnreadable", message)


def test_a_final_pod_still_shown_running_after_its_job_completed_is_waited_for() -> None:
    # Under load the operator sees the Job complete before it sees the pod that completed it.
    jobs = [*PREDICTED, job(Step.EVALUATE, complete=True, at=40)]
    lagging = [*PREDICT_PODS, pod(Step.EVALUATE, 0, "Running", started=30)]
    ctx = accepted(make_evaluation(RUNNING), jobs, lagging, now=100)
    assert decide(succeeded, ctx) == WaitForReport(T0 + timedelta(seconds=110))
    gave_up = decide(succeeded, accepted(make_evaluation(RUNNING), jobs, lagging, now=40 + 301))
    assert isinstance(gave_up, Plan) and gave_up.phase == Phase.FAILED


def test_a_final_pod_reporting_a_failure_has_unreadable_results() -> None:
    plan = decide(succeeded, evaluated(failure_message("HandlerFailed", "boom")))
    assert isinstance(plan, Plan)
    assert plan.status.message == (
        "results unreadable: the final step succeeded but reported a failure: HandlerFailed"
    )
