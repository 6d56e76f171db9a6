"""Desired state, as pure functions: an Evaluation and its pool → Jobs, debug Service, debug Secret.

Nothing here talks to the cluster; the controller applies what these functions return.
"""

from assay.render.debug import debug_enabled, debug_secret_for, debug_service_for, needs_generated_secret
from assay.render.jobs import (
    RenderOptions,
    debug_password_secret,
    job_deadline_seconds,
    job_for,
    owner_reference,
    retention_of,
    task_environment,
)
from assay.render.names import (
    ANNOTATION_EVALUATION,
    LABEL_EVALUATION,
    LABEL_STEP,
    annotations_for,
    debug_name,
    evaluation_of,
    evaluation_selector,
    job_name,
    label_value,
    labels_for,
)

__all__ = [
    "ANNOTATION_EVALUATION",
    "LABEL_EVALUATION",
    "LABEL_STEP",
    "RenderOptions",
    "annotations_for",
    "debug_enabled",
    "debug_name",
    "debug_password_secret",
    "debug_secret_for",
    "debug_service_for",
    "evaluation_of",
    "evaluation_selector",
    "job_deadline_seconds",
    "job_for",
    "job_name",
    "label_value",
    "labels_for",
    "needs_generated_secret",
    "owner_reference",
    "retention_of",
    "task_environment",
]
