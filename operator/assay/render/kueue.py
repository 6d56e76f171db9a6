"""What a Job of a pool whose admission Kueue decides carries (pool ``spec.admission.queue: Kueue``).

Kueue's contract for ``batch/v1`` Jobs: a Job labelled ``kueue.x-k8s.io/queue-name`` is created suspended,
Kueue makes a Workload of it and unsuspends the Job once its ClusterQueue admits the Workload (and suspends
it again when it evicts or preempts it). Assay therefore creates every such Job suspended and never changes
``spec.suspend`` itself; a user's ``spec.suspend`` on the Evaluation deactivates the Workloads instead.

The evaluate Job is created after the predict step, not up front (suspended): an up-front Workload would
be admitted at once and hold its quota idle for the whole predict step (or, admitted and unsuspended,
start an evaluate pod with no predictions to read). The price is one more admission, which Kueue makes
within its scheduling cycle when quota is free (see the README's measured create → Running figure).
"""

from __future__ import annotations

from typing import Any

from assay.api import Evaluation, ResourcePool

QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_CLASS_LABEL = "kueue.x-k8s.io/priority-class"
MIN_PARALLELISM_ANNOTATION = "kueue.x-k8s.io/job-min-parallelism"


def local_queue_of(evaluation: Evaluation, pool: ResourcePool) -> str | None:
    """The LocalQueue the Evaluation's Jobs go to: its own label, else the pool's localQueueName."""
    admission = pool.spec.admission
    own = evaluation.metadata.labels.get(QUEUE_NAME_LABEL)
    return own or (admission.local_queue_name if admission is not None else None)


def hand_to_kueue(job: dict[str, Any], evaluation: Evaluation, pool: ResourcePool) -> dict[str, Any]:
    """``job`` (as render made it) submitted to Kueue: suspended, in the pool's LocalQueue, with the
    priority class and partial admission the pool or the Evaluation asks for. Changes ``job`` in place."""
    admission = pool.spec.admission
    if admission is None:
        return job
    metadata, spec = job["metadata"], job["spec"]
    # A copy: the pod template shares the Job's label dict, and Kueue's labels belong on the Job only.
    labels = metadata["labels"] = dict(metadata.get("labels", {}))
    queue = local_queue_of(evaluation, pool)
    if queue:
        labels[QUEUE_NAME_LABEL] = queue
    priority = evaluation.metadata.labels.get(PRIORITY_CLASS_LABEL) or admission.workload_priority_class_name
    if priority:
        labels[PRIORITY_CLASS_LABEL] = priority
    completions = int(spec.get("completions") or 1)
    if admission.min_parallelism is not None and admission.min_parallelism < completions:
        metadata.setdefault("annotations", {})[MIN_PARALLELISM_ANNOTATION] = str(admission.min_parallelism)
    spec["suspend"] = True
    return job
