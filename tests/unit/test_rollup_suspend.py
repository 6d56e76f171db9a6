"""rollup.rules.suspend: by spec.suspend, or by a spent HoldAndDrain budget; else resumed."""

from __future__ import annotations

from datetime import timedelta

from rollup_rules import accepted, recorded
from test_rollup_evaluation import T0, job, make_evaluation, pod

from assay.api import ConditionType, Phase
from assay.contract import Step
from assay.rollup import QueueVerdict
from assay.rollup.rules.suspend import suspended

STARTED = [pod(Step.PREDICT, 0, "Running", started=0)]
SPENT = QueueVerdict(admitted=True, budget="budget weekly: 0.00 USD left, needs 7.20 USD")
WAS_SUSPENDED = {
    "phase": "Suspended",
    "conditions": [
        {
            "type": "Suspended",
            "status": "True",
            "reason": "Suspended",
            "lastTransitionTime": "2026-01-01T12:00:00Z",
        }
    ],
}


def test_spec_suspend_stops_the_tasks_and_keeps_the_jobs() -> None:
    ev = make_evaluation({"phase": "Running"}, suspend=True, autoReleaseSeconds=600)
    ctx = accepted(ev, [job(Step.PREDICT)], STARTED)
    plan = suspended(ctx)
    assert plan is not None
    assert plan.phase == Phase.SUSPENDED
    assert plan.status.message == "suspended: tasks stopped, set spec.suspend to false to resume"
    assert recorded(ctx, ConditionType.SUSPENDED) == ("True", "Suspended", "suspended by spec.suspend")
    assert (plan.suspend_jobs, plan.delete_jobs) == (True, False)
    # Suspended time still counts towards auto-release: look again at expiry.
    assert plan.recheck_at == T0 + timedelta(seconds=600)
    assert plan.status.completion_time is None


def test_a_spent_budget_suspends_a_running_evaluation() -> None:
    ctx = accepted(make_evaluation({"phase": "Running"}), [job(Step.PREDICT)], STARTED, queue=SPENT)
    plan = suspended(ctx)
    assert plan is not None
    assert plan.phase == Phase.SUSPENDED
    assert plan.status.message == f"suspended: {SPENT.budget}"
    assert recorded(ctx, ConditionType.SUSPENDED) == ("True", "BudgetExhausted", SPENT.budget)
    assert plan.suspend_jobs is True


def test_a_spent_budget_leaves_an_evaluation_that_holds_nothing_to_the_queue() -> None:
    ctx = accepted(make_evaluation({"phase": "Queued"}), queue=SPENT)
    assert suspended(ctx) is None


def test_otherwise_a_suspended_evaluation_resumes() -> None:
    ctx = accepted(make_evaluation(WAS_SUSPENDED), [job(Step.PREDICT, suspend=True)], STARTED)
    assert suspended(ctx) is None
    assert recorded(ctx, ConditionType.SUSPENDED) == ("False", "Resumed", "resumed")


def test_a_never_suspended_evaluation_gets_no_suspended_condition() -> None:
    ctx = accepted(make_evaluation({"phase": "Running"}), [job(Step.PREDICT)], STARTED)
    assert suspended(ctx) is None
    assert recorded(ctx, ConditionType.SUSPENDED) is None
