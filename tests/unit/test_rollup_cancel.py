"""rollup.rules.cancel: spec.cancel ends any non-terminal Evaluation, keeps the record, deletes the Jobs."""

from __future__ import annotations

from rollup_rules import context, recorded
from test_rollup_evaluation import job, make_evaluation, pod

from assay.api import ConditionType, Phase, TaskPhase
from assay.contract import Step
from assay.rollup.rules.cancel import cancelled

RUNNING = {
    "phase": "Running",
    "conditions": [
        {
            "type": "Running",
            "status": "True",
            "reason": "TasksRunning",
            "lastTransitionTime": "2026-01-01T12:00:00Z",
        }
    ],
}


def test_no_cancel_does_not_apply() -> None:
    assert cancelled(context(make_evaluation(RUNNING), [job(Step.PREDICT)])) is None


def test_cancel_stops_the_tasks_and_deletes_the_jobs() -> None:
    ev = make_evaluation(RUNNING, cancel=True)
    ctx = context(ev, [job(Step.PREDICT)], [pod(Step.PREDICT, 0, "Running"), pod(Step.PREDICT, 1, "Running")])
    plan = cancelled(ctx)
    assert plan is not None
    assert plan.phase == Phase.CANCELLED
    assert plan.status.message == "cancelled: tasks stopped, the record is kept"
    assert plan.delete_jobs is True
    assert recorded(ctx, ConditionType.CANCELLED) == ("True", "Cancelled", "cancelled by spec.cancel")
    assert recorded(ctx, ConditionType.RUNNING) == ("False", "Cancelled", "")
    # Queued never applied: it stays absent rather than appearing as False.
    assert recorded(ctx, ConditionType.QUEUED) is None
    assert plan.status.completion_time is not None
    assert all(t.phase != TaskPhase.RUNNING for t in plan.status.tasks)


def test_cancel_before_any_job_has_nothing_to_delete() -> None:
    plan = cancelled(context(make_evaluation(cancel=True)))
    assert plan is not None
    assert plan.phase == Phase.CANCELLED
    assert plan.delete_jobs is False
