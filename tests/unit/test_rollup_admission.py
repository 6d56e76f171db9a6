"""rollup.rules.admission: the re-check before the Evaluation holds anything."""

from __future__ import annotations

from rollup_rules import context, recorded
from test_rollup_evaluation import job, make_evaluation

from assay.api import ConditionType, Phase
from assay.contract import Step
from assay.rollup import Acceptance
from assay.rollup.rules.admission import rejected

NO_POOL = Acceptance(False, "UnknownPool", "pool a100 does not exist", retryable=True)
TOO_BIG = Acceptance(False, "ResourcesOutOfRange", "asks for 9 GPUs, the pool allows 8")


def test_a_fixable_rejection_waits_in_pending() -> None:
    ctx = context(make_evaluation(), acceptance=NO_POOL)
    plan = rejected(ctx)
    assert plan is not None
    assert plan.phase == Phase.PENDING
    assert plan.status.message == "not accepted yet: pool a100 does not exist"
    assert recorded(ctx, ConditionType.ACCEPTED) == ("False", "UnknownPool", "pool a100 does not exist")
    assert recorded(ctx, ConditionType.FAILED) is None
    assert (plan.create_jobs, plan.delete_jobs) == ((), False)


def test_a_rejection_the_spec_must_fix_fails() -> None:
    ctx = context(make_evaluation(), acceptance=TOO_BIG)
    plan = rejected(ctx)
    assert plan is not None
    assert plan.phase == Phase.FAILED
    assert plan.status.message == "rejected: asks for 9 GPUs, the pool allows 8"
    assert recorded(ctx, ConditionType.FAILED) == ("True", "ResourcesOutOfRange", TOO_BIG.message)
    assert plan.status.completion_time is not None


def test_acceptance_does_not_apply_and_records_accepted() -> None:
    ctx = context(make_evaluation())
    assert rejected(ctx) is None
    assert recorded(ctx, ConditionType.ACCEPTED) == ("True", "Accepted", "the spec fits pool a100")


def test_a_started_evaluation_is_not_rejected_again() -> None:
    ctx = context(make_evaluation({"phase": "Running"}), [job(Step.PREDICT)], acceptance=TOO_BIG)
    assert rejected(ctx) is None
    assert recorded(ctx, ConditionType.ACCEPTED) == ("True", "Accepted", "the spec fits pool a100")


def test_a_started_evaluation_whose_pool_is_gone_keeps_its_accepted_condition() -> None:
    ctx = context(make_evaluation({"phase": "Running"}), [job(Step.PREDICT)], pool=None)
    assert rejected(ctx) is None
    assert recorded(ctx, ConditionType.ACCEPTED) is None
