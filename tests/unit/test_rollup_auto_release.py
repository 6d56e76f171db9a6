"""rollup.rules.auto_release: past its expiry (or a Job past its deadline) the run is stopped, Expired."""

from __future__ import annotations

from datetime import timedelta

from rollup_rules import accepted, recorded
from test_rollup_evaluation import T0, job, make_evaluation, pod

from assay.api import ConditionType, Phase
from assay.contract import Step, result_message
from assay.rollup.rules.auto_release import DEBUG_SUMMARY_WAIT, expired

RUNNING = {"phase": "Running"}
STARTED = [pod(Step.PREDICT, 0, "Running", started=0), pod(Step.PREDICT, 1, "Running", started=0)]


def test_before_expiry_it_does_not_apply() -> None:
    ctx = accepted(make_evaluation(RUNNING, autoReleaseSeconds=30), [job(Step.PREDICT)], STARTED, now=29)
    assert ctx.lifetime.expires_at == T0 + timedelta(seconds=30)
    assert expired(ctx) is None


def test_at_expiry_the_tasks_stop_and_the_jobs_go() -> None:
    ctx = accepted(make_evaluation(RUNNING, autoReleaseSeconds=30), [job(Step.PREDICT)], STARTED, now=30)
    plan = expired(ctx)
    assert plan is not None
    assert plan.phase == Phase.EXPIRED
    message = "auto-released after 30 s: tasks stopped and their resources freed"
    assert plan.status.message == message
    assert recorded(ctx, ConditionType.EXPIRED) == ("True", "AutoReleased", message)
    assert plan.delete_jobs is True
    assert plan.status.expires_at == T0 + timedelta(seconds=30)
    assert plan.status.completion_time == T0 + timedelta(seconds=30)


def test_zero_seconds_never_expires() -> None:
    ctx = accepted(make_evaluation(RUNNING, autoReleaseSeconds=0), [job(Step.PREDICT)], STARTED, now=10_000)
    assert ctx.lifetime.expires_at is None
    assert expired(ctx) is None


def test_a_job_past_its_deadline_expires_the_run_early() -> None:
    deadline = job(Step.PREDICT, failed="DeadlineExceeded", at=20)
    plan = expired(accepted(make_evaluation(RUNNING, autoReleaseSeconds=3600), [deadline], STARTED, now=21))
    assert plan is not None
    assert plan.phase == Phase.EXPIRED
    assert plan.status.message == "auto-released after 3600 s: tasks stopped and their resources freed"


def test_an_expiring_debug_run_waits_for_its_final_pod_to_report() -> None:
    ev = make_evaluation(RUNNING, tasks=1, debug={"enabled": True}, autoReleaseSeconds=60)
    plan = expired(accepted(ev, [job(Step.ALL)], [pod(Step.ALL, 0, "Running", started=0)], now=60))
    assert plan is not None
    assert (plan.delete_jobs, plan.suspend_jobs) == (False, True)
    assert plan.recheck_at == T0 + timedelta(seconds=60) + DEBUG_SUMMARY_WAIT


def test_a_summary_reported_by_then_is_kept_in_results() -> None:
    ev = make_evaluation(RUNNING, tasks=1, debug={"enabled": True}, autoReleaseSeconds=60)
    done = pod(Step.ALL, 0, "Succeeded", started=0, finished=50, message=result_message({"f1": 0.5}, 4))
    plan = expired(accepted(ev, [job(Step.ALL)], [done], now=60))
    assert plan is not None
    assert plan.status.results is not None and plan.status.results.summary == {"f1": 0.5}
    assert plan.status.message == (
        "auto-released after 60 s: tasks stopped and their resources freed"
        "; the summary the handler reported before is in results"
    )
    assert plan.delete_jobs is True
