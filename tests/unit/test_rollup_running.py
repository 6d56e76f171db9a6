"""rollup.rules.running: which Jobs should exist next, and the Running status."""

from __future__ import annotations

from datetime import timedelta

from rollup_rules import accepted, recorded
from test_rollup_evaluation import T0, job, make_evaluation, pod

from assay.api import ConditionType, Phase
from assay.contract import Step
from assay.rollup.rules.running import jobs_to_create, still_running

RUNNING = {"phase": "Running"}


def create(ctx):  # type: ignore[no-untyped-def]
    return jobs_to_create(ctx, ctx.tasks(stopped=False))


def test_predict_first_then_evaluate_once_predict_is_complete() -> None:
    assert create(accepted(make_evaluation())) == (Step.PREDICT,)
    assert create(accepted(make_evaluation(RUNNING), [job(Step.PREDICT)])) == ()
    done = [job(Step.PREDICT, complete=True)]
    assert create(accepted(make_evaluation(RUNNING), done)) == (Step.EVALUATE,)
    assert create(accepted(make_evaluation(RUNNING), [*done, job(Step.EVALUATE)])) == ()


def test_one_task_runs_as_one_all_in_one_job() -> None:
    assert create(accepted(make_evaluation(tasks=1))) == (Step.ALL,)
    assert create(accepted(make_evaluation(RUNNING, tasks=1), [job(Step.ALL)])) == ()


def test_no_job_is_rendered_without_its_pool() -> None:
    ctx = accepted(make_evaluation(RUNNING), [job(Step.PREDICT, complete=True)], pool=None)
    assert create(ctx) == ()
    assert recorded(ctx, ConditionType.ACCEPTED) == ("False", "UnknownPool", "pool a100 no longer exists")


def test_a_pool_gone_is_not_reported_while_no_job_is_due() -> None:
    ctx = accepted(make_evaluation(RUNNING), [job(Step.PREDICT)], pool=None)
    assert create(ctx) == ()
    assert recorded(ctx, ConditionType.ACCEPTED) is None


def test_the_running_status_counts_tasks_and_creates_what_is_due() -> None:
    ev = make_evaluation(RUNNING, autoReleaseSeconds=600)
    pods = [pod(Step.PREDICT, 0, "Running", started=0), pod(Step.PREDICT, 1, "Succeeded", finished=30)]
    ctx = accepted(ev, [job(Step.PREDICT)], pods)
    tasks = ctx.tasks(stopped=False)
    plan = still_running(ctx, tasks, (), [T0 + timedelta(seconds=70)])
    assert plan.phase == Phase.RUNNING
    assert plan.status.message == "1/3 tasks succeeded, 1 running"
    assert recorded(ctx, ConditionType.RUNNING) == ("True", "TasksRunning", "tasks are running")
    assert recorded(ctx, ConditionType.SCHEDULED) == (
        "True",
        "PodsScheduled",
        "every task pod is bound to a node",
    )
    assert (plan.create_jobs, plan.suspend_jobs, plan.ensure_debug) == ((), False, False)
    # The earliest of the awaited pod report and the expiry.
    assert plan.recheck_at == T0 + timedelta(seconds=70)
    assert plan.status.expires_at == T0 + timedelta(seconds=600)


def test_an_unschedulable_task_says_why_in_scheduled_and_in_the_message() -> None:
    pods = [pod(Step.PREDICT, 0, "Pending", unschedulable=True), pod(Step.PREDICT, 1, "Running")]
    ctx = accepted(make_evaluation(RUNNING, autoReleaseSeconds=0), [job(Step.PREDICT)], pods)
    plan = still_running(ctx, ctx.tasks(stopped=False), (), [])
    scheduled = recorded(ctx, ConditionType.SCHEDULED)
    assert scheduled is not None and scheduled[:2] == ("False", "Unschedulable")
    assert "predict/0" in scheduled[2]
    assert (plan.status.message or "").startswith(
        "0/3 tasks succeeded, 1 running; task predict/0 Unschedulable"
    )
    assert plan.recheck_at is None


def test_no_task_running_yet() -> None:
    ctx = accepted(make_evaluation())
    plan = still_running(ctx, ctx.tasks(stopped=False), (Step.PREDICT,), [])
    assert plan.create_jobs == (Step.PREDICT,)
    assert plan.status.message == "0/3 tasks succeeded"
    assert recorded(ctx, ConditionType.RUNNING) == (
        "False",
        "TasksNotRunning",
        "no task is running right now",
    )
    assert recorded(ctx, ConditionType.SCHEDULED) is None
