"""Termination messages with NaN or infinite metrics are unreadable, not a status the apiserver refuses.

Regression: ``json.loads`` reads ``NaN`` and ``1e400`` (as nan and inf); the operator then wrote a status
with NaN, the apiserver refused it (400) on every retry, and the Evaluation stayed Running for ever.
"""

from __future__ import annotations

import pytest

from assay.contract import TaskResult, UnreadableMessage, parse_termination_message

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"summary": {"accuracy": NaN}}', "NaN is not JSON"),
        ('{"summary": {"accuracy": Infinity}}', "Infinity is not JSON"),
        ('{"summary": {"accuracy": -Infinity}}', "-Infinity is not JSON"),
        ('{"summary": {"accuracy": 1e400}}', "not a finite number"),
    ],
)
def test_non_finite_metrics_are_unreadable(text: str, says: str) -> None:
    with pytest.raises(UnreadableMessage, match=says):
        parse_termination_message(text)


def test_finite_and_null_metrics_are_read() -> None:
    result = parse_termination_message('{"summary": {"accuracy": 0.5, "loss": null, "n": 10}}')
    assert result == TaskResult(summary={"accuracy": 0.5, "loss": None, "n": 10}, records=None)
