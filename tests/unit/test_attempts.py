"""assay.attempts: task attempts read from pods (numbering, index, exit state); what `assay logs` picks."""

from __future__ import annotations

import pytest
from cli_samples import pod

from assay.attempts import attempts_from_pods, select_attempts, single_attempt
from assay.errors import Invalid, NotFound

PODS = [
    pod("e-0-x", "evaluate", 0, "2026-11-26T11:03:00Z"),
    pod("p-1-second", "predict", 1, "2026-11-26T11:02:00Z", phase="Running", exit_code=None),
    pod("p-0", "predict", 0, "2026-11-26T11:00:00Z"),
    pod("p-1-first", "predict", 1, "2026-11-26T11:00:00Z", phase="Failed", exit_code=12, reason="Error"),
]


def test_attempts_are_ordered_by_task_and_numbered_by_creation():
    attempts = attempts_from_pods(PODS)
    assert [(a.step, a.index, a.attempt, a.pod) for a in attempts] == [
        ("evaluate", 0, 1, "e-0-x"),
        ("predict", 0, 1, "p-0"),
        ("predict", 1, 1, "p-1-first"),
        ("predict", 1, 2, "p-1-second"),
    ]


def test_an_attempt_carries_its_pods_exit_state():
    first = attempts_from_pods(PODS)[2]
    assert first.phase == "Failed"
    assert first.exit_code == 12
    assert first.reason == "HandlerFailed"  # what the runner reported, as in the task's status
    assert first.node == "gpu-node-1"
    assert first.container == "task"
    assert first.completion_time is not None
    running = attempts_from_pods(PODS)[3]
    assert running.exit_code is None and running.completion_time is None


def test_numbers_count_back_from_the_status_when_earlier_pods_are_gone():
    only_latest = [pod("p-1-third", "predict", 1, "2026-11-26T11:05:00Z")]
    attempts = attempts_from_pods(only_latest, {("predict", 1): 3})
    assert attempts[0].attempt == 3


def test_the_index_label_is_used_when_the_annotation_is_missing():
    attempts = attempts_from_pods([pod("p-7", "predict", 7, "2026-11-26T11:00:00Z", index_in_label=True)])
    assert attempts[0].index == 7


def test_without_choices_the_latest_attempt_of_every_task_is_selected():
    chosen = select_attempts(attempts_from_pods(PODS))
    assert [a.pod for a in chosen] == ["e-0-x", "p-0", "p-1-second"]


def test_step_task_and_attempt_narrow_the_selection():
    attempts = attempts_from_pods(PODS)
    assert [a.pod for a in select_attempts(attempts, step="predict", task=1)] == ["p-1-second"]
    assert [a.pod for a in select_attempts(attempts, step="predict", task=1, attempt=1)] == ["p-1-first"]
    assert [a.pod for a in select_attempts(attempts, step="evaluate")] == ["e-0-x"]


def test_an_unknown_task_or_attempt_names_what_exists():
    attempts = attempts_from_pods(PODS)
    with pytest.raises(
        NotFound, match=r"no task predict/5; tasks with pods: evaluate/0, predict/0, predict/1"
    ):
        select_attempts(attempts, step="predict", task=5)
    with pytest.raises(NotFound, match=r"no attempt 3 .*attempts there: 1, 2"):
        select_attempts(attempts, step="predict", task=1, attempt=3)
    with pytest.raises(NotFound, match="no task pods exist"):
        select_attempts([])


def test_following_needs_exactly_one_task():
    attempts = attempts_from_pods(PODS)
    assert single_attempt(select_attempts(attempts, step="evaluate")).pod == "e-0-x"
    with pytest.raises(Invalid, match=r"3 tasks match \(evaluate/0, predict/0, predict/1\); pick one"):
        single_attempt(select_attempts(attempts))
