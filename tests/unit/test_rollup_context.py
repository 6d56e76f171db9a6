"""rollup.rules.context: the whole status a rule writes, and what an accepted Evaluation's statuses carry."""

from __future__ import annotations

from datetime import timedelta

from rollup_rules import context
from test_rollup_evaluation import T0, job, make_evaluation, pod

from assay.api import ConditionType, Phase
from assay.contract import Step

STORED = {"phase": "Queued", "queuePosition": 2, "message": "old", "startTime": "2026-01-01T11:00:00Z"}


def test_a_status_starts_from_the_stored_one() -> None:
    status = context(make_evaluation(STORED)).status(Phase.QUEUED, "still waiting")
    assert (status.phase, status.message, status.queue_position) == (Phase.QUEUED, "still waiting", 2)
    assert status.start_time == T0 - timedelta(hours=1)
    assert status.observed_generation == 1
    assert status.completion_time is None


def test_leaving_the_queue_drops_the_position_and_a_terminal_phase_ends_now() -> None:
    ctx = context(make_evaluation(STORED), now=90)
    assert ctx.status(Phase.RUNNING, "r").queue_position is None
    assert ctx.status(Phase.CANCELLED, "c").completion_time == T0 + timedelta(seconds=90)


def test_recorded_conditions_go_into_every_status() -> None:
    ctx = context(make_evaluation())
    ctx.conditions.set(ConditionType.ACCEPTED, True, "Accepted", "fits")
    ctx.conditions.clear(ConditionType.QUEUED, "Admitted")  # never set: stays absent
    conditions = ctx.status(Phase.RUNNING, "r").conditions
    assert [(c.type, c.status.value, c.reason) for c in conditions] == [("Accepted", "True", "Accepted")]


def test_extra_fields_override() -> None:
    status = context(make_evaluation(STORED)).status(Phase.QUEUED, "q", queue_position=5)
    assert status.queue_position == 5


def test_before_admission_the_stored_start_time_stays_after_it_the_first_task_start_counts() -> None:
    ev = make_evaluation({"phase": "Running"}, autoReleaseSeconds=100)
    pods = [pod(Step.PREDICT, 0, "Running", started=5), pod(Step.PREDICT, 1, "Running", started=3)]
    ctx = context(ev, [job(Step.PREDICT)], pods)
    assert ctx.status(Phase.RUNNING, "r").start_time is None
    admitted = ctx.accepted()
    status = admitted.status(Phase.RUNNING, "r")
    assert status.start_time == T0 + timedelta(seconds=3)
    assert status.expires_at == T0 + timedelta(seconds=103)
    assert admitted.conditions is ctx.conditions


def test_a_debug_run_carries_its_endpoint() -> None:
    ctx = context(make_evaluation(debug={"enabled": True})).accepted()
    debug = ctx.status(Phase.RUNNING, "r").debug
    assert debug is not None
    assert (debug.service, debug.password_secret) == ("ev-debug", "ev-debug")
