"""rollup.rules.refused: a create the apiserver refused for good fails the Evaluation."""

from __future__ import annotations

from rollup_rules import accepted, recorded
from test_rollup_evaluation import job, make_evaluation

from assay.api import ConditionType, Phase
from assay.contract import Step
from assay.rollup import CreateRefusal
from assay.rollup.rules.refused import create_refused

OVER_QUOTA = CreateRefusal("Job", "ev-evaluate", 403, "exceeded quota: gpu")


def test_no_refusal_does_not_apply() -> None:
    assert create_refused(accepted(make_evaluation(), [job(Step.PREDICT)])) is None


def test_a_refused_create_fails_and_stops_the_unfinished_jobs() -> None:
    ctx = accepted(
        make_evaluation({"phase": "Running"}),
        [job(Step.PREDICT, complete=True)],
        refused=OVER_QUOTA,
    )
    plan = create_refused(ctx)
    assert plan is not None
    assert plan.phase == Phase.FAILED
    message = "the apiserver refused to create Job ev-evaluate (403): exceeded quota: gpu"
    assert plan.status.message == message
    assert recorded(ctx, ConditionType.FAILED) == ("True", "CreateRefused", message)
    # The predict Job is complete: nothing left to stop.
    assert plan.delete_jobs is False


def test_a_refused_create_deletes_a_job_still_running() -> None:
    ctx = accepted(make_evaluation({"phase": "Running"}), [job(Step.PREDICT)], refused=OVER_QUOTA)
    plan = create_refused(ctx)
    assert plan is not None
    assert plan.delete_jobs is True
