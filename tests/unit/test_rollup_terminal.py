"""rollup.rules.terminal: a terminal phase is never left; only its Jobs are cleaned up."""

from __future__ import annotations

from rollup_rules import context
from test_rollup_evaluation import job, make_evaluation, pod

from assay.api import Phase
from assay.contract import Step, result_message
from assay.rollup.rules.terminal import frozen


def test_a_phase_still_in_progress_is_not_frozen() -> None:
    for phase in (None, "Pending", "Queued", "Running", "Suspended"):
        status = {"phase": phase} if phase else None
        assert frozen(context(make_evaluation(status), [job(Step.PREDICT)])) is None


def test_a_succeeded_evaluation_keeps_its_status_whatever_is_observed() -> None:
    ev = make_evaluation(
        {"phase": "Succeeded", "message": "all 3 task(s) succeeded"}, cancel=True, suspend=True
    )
    plan = frozen(context(ev, [job(Step.PREDICT, complete=True)], [pod(Step.PREDICT, 0, "Failed")]))
    assert plan is not None
    assert plan.phase == Phase.SUCCEEDED
    assert plan.status.message == "all 3 task(s) succeeded"
    assert plan.status.observed_generation == 1
    assert (plan.delete_jobs, plan.create_jobs, plan.suspend_jobs) == (False, (), None)


def test_a_cancelled_evaluation_deletes_any_job_left() -> None:
    plan = frozen(context(make_evaluation({"phase": "Cancelled"}), [job(Step.PREDICT, complete=True)]))
    assert plan is not None and plan.delete_jobs is True


def test_a_failed_evaluation_stops_jobs_that_still_run_tasks() -> None:
    still = frozen(context(make_evaluation({"phase": "Failed"}), [job(Step.EVALUATE)]))
    done = frozen(
        context(make_evaluation({"phase": "Failed"}), [job(Step.PREDICT, failed="BackoffLimitExceeded")])
    )
    assert still is not None and still.delete_jobs is True
    assert done is not None and done.delete_jobs is False


def test_an_expired_debug_run_still_takes_the_summary_its_stopped_pod_reports() -> None:
    ev = make_evaluation({"phase": "Expired", "message": "auto-released"}, tasks=1, debug={"enabled": True})
    stopped = pod(Step.ALL, 0, "Succeeded", message=result_message({"accuracy": 0.8}, 2))
    plan = frozen(context(ev, [job(Step.ALL, suspend=True)], [stopped]))
    assert plan is not None
    assert plan.phase == Phase.EXPIRED
    assert plan.status.results is not None and plan.status.results.summary == {"accuracy": 0.8}
    assert plan.status.message == "auto-released; the summary the handler reported before is in results"
    assert plan.delete_jobs is True
