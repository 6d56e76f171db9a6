"""Reading Kueue's Workloads (raw API dicts, ``kueue.x-k8s.io/v1beta2``): admitted, evicted or waiting,
and why, in Kueue's own words. No I/O.

Kueue makes one Workload per Job it manages (owned by the Job) and records its decisions as conditions:
``QuotaReserved`` (with the reason and message of a wait, e.g. which flavor lacks how much), ``Admitted``,
``Evicted`` (reason ``Preempted``, ``InactiveWorkload``, ``PodsReadyTimeout``...) and ``Finished``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from assay.contract import Step
from assay.rollup.observed import Raw, _get

KUEUE_GROUP = "kueue.x-k8s.io"
WORKLOAD_VERSION = "v1beta2"
WORKLOAD_PLURAL = "workloads"
# Kueue's eviction reason for a Workload that a higher-priority one (or its cohort) took the quota from.
PREEMPTED = "Preempted"
EVICTED = "Evicted"
WAITING_FOR_KUEUE = "WaitingForKueue"


@dataclass(frozen=True)
class WorkloadView:
    """Kueue's verdict on one Job's Workload."""

    admitted: bool
    # Why it waits (QuotaReserved=False) or why it was evicted: Kueue's reason and message.
    reason: str
    message: str
    evicted: bool = False
    cluster_queue: str | None = None


def _condition(workload: Raw, type_: str) -> Raw | None:
    conditions: list[Raw] = _get(workload, "status", "conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def _true(condition: Raw | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def view_workload(workload: Raw | None) -> WorkloadView:
    """Admitted, evicted (and not re-admitted) or waiting, with Kueue's reason and message."""
    if workload is None:
        return WorkloadView(False, WAITING_FOR_KUEUE, "Kueue has not made a Workload of the Job yet")
    cluster_queue = _get(workload, "status", "admission", "clusterQueue")
    if _true(_condition(workload, "Admitted")):
        return WorkloadView(True, "Admitted", "", cluster_queue=cluster_queue)
    evicted = _condition(workload, "Evicted")
    if _true(evicted) and evicted is not None:
        reason = PREEMPTED if evicted.get("reason") == PREEMPTED else EVICTED
        return WorkloadView(False, reason, _message(evicted, "evicted by Kueue"), evicted=True)
    reserved = _condition(workload, "QuotaReserved")
    if reserved is not None and reserved.get("status") == "False":
        return WorkloadView(False, reserved.get("reason") or WAITING_FOR_KUEUE, _message(reserved, "pending"))
    if _true(reserved):  # quota reserved, admission checks still to pass
        return WorkloadView(False, "QuotaReserved", "quota reserved; waiting for Kueue's admission checks")
    queue = _get(workload, "spec", "queueName") or "?"
    return WorkloadView(False, WAITING_FOR_KUEUE, f"waiting in Kueue's LocalQueue {queue}")


def _message(condition: Raw, default: str) -> str:
    text = condition.get("message")
    return text if isinstance(text, str) and text else default


def workloads_by_step(workloads: Sequence[Raw], jobs: Mapping[Step, Raw]) -> dict[Step, Raw]:
    """The Workload Kueue made of each of the Evaluation's Jobs (matched by the Job's uid, as Kueue owns
    it), newest first when Kueue recreated one."""
    steps_by_uid = {_get(job, "metadata", "uid"): step for step, job in jobs.items()}
    found: dict[Step, Raw] = {}
    newest_first = sorted(
        workloads, key=lambda w: str(_get(w, "metadata", "creationTimestamp") or ""), reverse=True
    )
    for workload in newest_first:
        for owner in _get(workload, "metadata", "ownerReferences") or []:
            step = steps_by_uid.get(owner.get("uid"))
            if step is not None and owner.get("kind") == "Job":
                found.setdefault(step, workload)
    return found
