"""A debug run ends Expired (its pods stay up after the handler); the summary its handler reported before
expiry is still read: the pods are stopped first (the runner then exits with its termination message), and
the Jobs deleted once the final pod has reported or the wait is over."""

from __future__ import annotations

from datetime import timedelta

from test_rollup_evaluation import T0, after, job, make_evaluation, plan, pod

from assay.api import Phase
from assay.contract import Step, result_message
from assay.rollup.evaluation import DEBUG_SUMMARY_WAIT, may_report_after_expiry

SUMMARY = result_message({"accuracy": 0.91}, records=10)


def debug_run():  # type: ignore[no-untyped-def]
    ev = make_evaluation(tasks=1, debug={"enabled": True}, autoReleaseSeconds=60)
    running = plan(ev, [job(Step.ALL)], [pod(Step.ALL, 0, "Running", started=0)], now=30)
    assert running.phase == Phase.RUNNING
    return after(ev, running)


def test_at_expiry_a_debug_run_stops_its_pods_and_keeps_its_jobs_to_read_the_summary() -> None:
    expired = plan(debug_run(), [job(Step.ALL)], [pod(Step.ALL, 0, "Running", started=0)], now=60)
    assert expired.phase == Phase.EXPIRED
    assert (expired.delete_jobs, expired.suspend_jobs) == (False, True)
    assert expired.recheck_at == T0 + timedelta(seconds=60) + DEBUG_SUMMARY_WAIT


def test_the_stopped_pods_summary_lands_in_the_expired_status_then_the_jobs_go() -> None:
    ev = debug_run()
    expired = plan(ev, [job(Step.ALL)], [pod(Step.ALL, 0, "Running", started=0)], now=60)
    stopped = pod(Step.ALL, 0, "Succeeded", started=0, finished=62, message=SUMMARY)
    reported = plan(after(ev, expired), [job(Step.ALL, suspend=True)], [stopped], now=63)
    assert reported.phase == Phase.EXPIRED
    assert reported.status.results is not None and reported.status.results.summary == {"accuracy": 0.91}
    assert reported.status.headline == "accuracy=0.91"
    assert reported.delete_jobs
    assert "summary" in (reported.status.message or "")


def test_a_summary_seen_at_expiry_is_read_at_once() -> None:
    stopped = pod(Step.ALL, 0, "Succeeded", started=0, finished=59, message=SUMMARY)
    expired = plan(debug_run(), [job(Step.ALL, failed="DeadlineExceeded", at=59)], [stopped], now=60)
    assert expired.phase == Phase.EXPIRED
    assert expired.status.results is not None and expired.status.results.records == 10
    assert expired.delete_jobs


def test_a_debug_pod_that_ends_without_a_summary_or_never_ends_is_not_waited_for_long() -> None:
    ev = debug_run()
    expired = plan(ev, [job(Step.ALL)], [pod(Step.ALL, 0, "Running", started=0)], now=60)
    killed = pod(Step.ALL, 0, "Failed", started=0, finished=61, exit_code=143)
    gone = plan(after(ev, expired), [job(Step.ALL, suspend=True)], [killed], now=62)
    assert gone.delete_jobs and gone.status.results is None
    late = 60 + DEBUG_SUMMARY_WAIT.total_seconds()
    hung = plan(after(ev, expired), [job(Step.ALL, suspend=True)], [pod(Step.ALL, 0, "Running")], now=late)
    assert hung.delete_jobs and hung.status.results is None


def test_a_run_without_debug_is_released_at_once() -> None:
    ev = make_evaluation(tasks=1, autoReleaseSeconds=60)
    running = after(ev, plan(ev, [job(Step.ALL)], [pod(Step.ALL, 0, "Running", started=0)], now=30))
    expired = plan(running, [job(Step.ALL)], [pod(Step.ALL, 0, "Running", started=0)], now=60)
    assert expired.phase == Phase.EXPIRED and expired.delete_jobs and expired.recheck_at is None


def test_only_a_debug_runs_succeeded_final_pod_with_a_report_is_kept_after_deletion() -> None:
    ev = debug_run()
    reporting = pod(Step.ALL, 0, "Succeeded", finished=62, message=SUMMARY)
    assert may_report_after_expiry(ev, reporting)
    assert not may_report_after_expiry(ev, pod(Step.ALL, 0, "Failed", finished=62, exit_code=143))
    plain = make_evaluation(tasks=1)
    assert not may_report_after_expiry(plain, reporting)
