"""rollup.rules.quota: Queued while pool quota or a budget holds the Evaluation back; holds_quota."""

from __future__ import annotations

from rollup_rules import accepted, recorded
from test_rollup_evaluation import job, make_evaluation

from assay.api import ConditionType, Phase
from assay.contract import Step
from assay.rollup import QueueVerdict
from assay.rollup.rules.quota import holds_quota, queued

FULL = QueueVerdict(admitted=False, position=3, message="8/8 nvidia.com/gpu in use")
NO_MONEY = QueueVerdict(admitted=False, position=1, budget="budget daily: 1.00 USD left, needs 7.20 USD")


def test_waiting_for_quota_shows_the_position() -> None:
    ctx = accepted(make_evaluation(), queue=FULL)
    plan = queued(ctx)
    assert plan is not None
    assert plan.phase == Phase.QUEUED
    assert plan.status.message == "waiting for quota in pool a100: 8/8 nvidia.com/gpu in use"
    assert plan.status.queue_position == 3
    assert recorded(ctx, ConditionType.QUEUED) == ("True", "WaitingForQuota", FULL.message)
    assert (plan.create_jobs, plan.suspend_jobs) == ((), None)


def test_waiting_for_a_budget_has_no_position() -> None:
    ctx = accepted(make_evaluation(), queue=NO_MONEY)
    plan = queued(ctx)
    assert plan is not None
    assert plan.status.message == f"waiting for budget in pool a100: {NO_MONEY.budget}"
    assert plan.status.queue_position is None
    assert recorded(ctx, ConditionType.QUEUED) == ("True", "BudgetExhausted", NO_MONEY.budget)


def test_queued_with_jobs_keeps_them_suspended() -> None:
    plan = queued(
        accepted(make_evaluation({"phase": "Queued"}), [job(Step.PREDICT, suspend=True)], queue=FULL)
    )
    assert plan is not None and plan.suspend_jobs is True


def test_admitted_it_does_not_apply_and_clears_queued() -> None:
    was_queued = {
        "phase": "Queued",
        "conditions": [
            {
                "type": "Queued",
                "status": "True",
                "reason": "WaitingForQuota",
                "lastTransitionTime": "2026-01-01T12:00:00Z",
            }
        ],
    }
    ctx = accepted(make_evaluation(was_queued))
    assert queued(ctx) is None
    assert recorded(ctx, ConditionType.QUEUED) == ("False", "Admitted", "admitted to pool a100")


def test_an_evaluation_holding_quota_is_never_queued_again() -> None:
    assert queued(accepted(make_evaluation({"phase": "Running"}), [job(Step.PREDICT)], queue=FULL)) is None


def test_holds_quota_while_running_or_with_a_live_job() -> None:
    assert holds_quota(make_evaluation({"phase": "Running"}), {})
    live = {Step.PREDICT: job(Step.PREDICT)}
    assert holds_quota(make_evaluation({"phase": "Queued"}), live)
    assert not holds_quota(
        make_evaluation({"phase": "Queued"}), {Step.PREDICT: job(Step.PREDICT, suspend=True)}
    )
    assert not holds_quota(
        make_evaluation({"phase": "Queued"}), {Step.PREDICT: job(Step.PREDICT, complete=True)}
    )
    assert not holds_quota(make_evaluation({"phase": "Running"}, suspend=True), live)
    assert not holds_quota(make_evaluation({"phase": "Running"}, cancel=True), live)
    assert not holds_quota(make_evaluation({"phase": "Succeeded"}), live)
