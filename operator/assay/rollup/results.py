"""The summary the pod of the final step reports in its termination message, as ``status.results``. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from assay.api import Evaluation, Results
from assay.contract import TaskResult, UnreadableMessage, final_step, parse_termination_message
from assay.rollup.observed import PodState


def results_of(evaluation: Evaluation, reported: TaskResult) -> Results:
    return Results(summary=dict(reported.summary), records=reported.records, location=evaluation.output_uri)


def final_pod(evaluation: Evaluation, pods: Sequence[PodState]) -> PodState | None:
    """A succeeded pod of the final step, if one is observed."""
    last = final_step(evaluation.spec.tasks)
    return next((p for p in pods if p.step == last and p.phase == "Succeeded"), None)


def reported_result(evaluation: Evaluation, pods: Sequence[PodState]) -> TaskResult | None:
    """The result a succeeded pod of the final step reported, if any (a debug pod reports it when stopped:
    its runner writes the termination message after the handler, and exits on SIGTERM)."""
    pod = final_pod(evaluation, pods)
    if pod is None:
        return None
    try:
        reported = parse_termination_message(pod.termination_message)
    except UnreadableMessage:
        return None
    return reported if isinstance(reported, TaskResult) else None
