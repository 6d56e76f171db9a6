"""Names and labels of everything the operator creates for an Evaluation.

Names are deterministic so a restarted operator finds what it created before (and a create that races with
an earlier one fails with AlreadyExists instead of making a duplicate).
"""

from __future__ import annotations

from assay.contract import Step

GROUP = "assay.dev"
LABEL_EVALUATION = f"{GROUP}/evaluation"
LABEL_STEP = f"{GROUP}/step"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "assay-operator"
# Set by Kubernetes on every pod of an Indexed Job (annotation and label).
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# Key of the generated debug password inside the generated Secret.
DEBUG_SECRET_KEY = "password"


def predict_job_name(evaluation: str) -> str:
    """The Indexed Job running the predict shards (only when tasks > 1)."""
    return f"{evaluation}-predict"


def evaluate_job_name(evaluation: str) -> str:
    """The Job running the evaluate step (or both steps, ``all``, when tasks == 1)."""
    return f"{evaluation}-evaluate"


def debug_name(evaluation: str) -> str:
    """The debug Service, and the generated debug Secret when the user names none."""
    return f"{evaluation}-debug"


def job_name(evaluation: str, step: Step) -> str:
    """The Job that runs ``step``."""
    return predict_job_name(evaluation) if step == Step.PREDICT else evaluate_job_name(evaluation)


def labels_for(evaluation: str, step: Step | None = None) -> dict[str, str]:
    """Labels on every object of an Evaluation: ``kubectl get pods -l assay.dev/evaluation=NAME`` works."""
    labels = {LABEL_EVALUATION: evaluation, LABEL_MANAGED_BY: MANAGER}
    if step is not None:
        labels[LABEL_STEP] = step.value
    return labels
