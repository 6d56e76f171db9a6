"""Names and labels of everything the operator creates for an Evaluation.

Names are deterministic so a restarted operator finds what it created before (and a create that races with
an earlier one fails with AlreadyExists instead of making a duplicate).

An Evaluation's name is a DNS subdomain (up to 253 characters, dots allowed, may start with a digit), but:

* a Job name plus ``-<largest completion index>`` is a pod hostname: a DNS label (63 characters, no dots);
* the debug Service name is a DNS-1035 label (63 characters, no dots, starts with a letter);
* a label value has at most 63 characters.

Every generated name is therefore ``<evaluation>-<role>`` when that is valid (exactly the names of earlier
releases, so an upgrade finds its objects), else a readable prefix of the name (dots made dashes), a hash
of the whole name and the role: ``<prefix>-<hash>-<role>``. The ``assay.dev/evaluation`` label is the name
when it fits, else ``<prefix>-<hash>``; objects whose label is not the name carry the full name in the
annotation ``assay.dev/evaluation-name`` (:func:`evaluation_of` reads it back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from assay.contract import Step, step_task_count

GROUP = "assay.dev"
LABEL_EVALUATION = f"{GROUP}/evaluation"
LABEL_STEP = f"{GROUP}/step"
# The full Evaluation name, on Jobs and task pods whose LABEL_EVALUATION had to be shortened.
ANNOTATION_EVALUATION = f"{GROUP}/evaluation-name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "assay-operator"
# Set by Kubernetes on every pod of an Indexed Job (annotation and label).
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# Key of the generated debug password inside the generated Secret.
DEBUG_SECRET_KEY = "password"

DNS_LABEL_MAX = 63
LABEL_VALUE_MAX = 63
# Hex digits of the SHA-256 of the full name: 40 bits, so two names collide with odds of 1 in 10^12.
HASH_LENGTH = 10


def _hash(evaluation: str) -> str:
    return hashlib.sha256(evaluation.encode()).hexdigest()[:HASH_LENGTH]


def _fitted(
    evaluation: str, suffix: str, room: int, *, dots: bool = False, letter_first: bool = False
) -> str:
    """``evaluation + suffix`` when it is at most ``room`` characters (without dots unless ``dots``,
    starting with a letter when ``letter_first``); else ``<prefix>-<hash><suffix>`` in ``room``."""
    plain = evaluation + suffix
    if (
        len(plain) <= room
        and (dots or "." not in evaluation)
        and (evaluation[:1].isalpha() or not letter_first)
    ):
        return plain
    readable = evaluation if dots else evaluation.replace(".", "-")
    if letter_first and not readable[:1].isalpha():
        readable = "e" + readable
    prefix = readable[: room - len(suffix) - HASH_LENGTH - 1].rstrip("-.")
    return f"{prefix}-{_hash(evaluation)}{suffix}"


def job_name(evaluation: str, step: Step, tasks: int) -> str:
    """The Job that runs ``step``: ``<eval>-predict``, the Indexed Job of the predict shards (tasks > 1),
    or ``<eval>-evaluate``, the evaluate step (or both steps, ``all``, when tasks == 1).

    Its pods' hostnames are ``<job>-<index>``, so the name leaves room for the largest index (``tasks`` is
    immutable, so the name never changes)."""
    role = "-predict" if step == Step.PREDICT else "-evaluate"
    largest_index = step_task_count(step, tasks) - 1
    return _fitted(evaluation, role, DNS_LABEL_MAX - len(f"-{largest_index}"))


def debug_name(evaluation: str) -> str:
    """The debug Service, and the generated debug Secret when the user names none."""
    return _fitted(evaluation, "-debug", DNS_LABEL_MAX, letter_first=True)


def label_value(evaluation: str) -> str:
    """The value of ``assay.dev/evaluation``: the name, or a prefix and hash when longer than 63."""
    return _fitted(evaluation, "", LABEL_VALUE_MAX, dots=True)


def evaluation_selector(evaluation: str) -> str:
    """Label selector of the Evaluation's Jobs and pods (``kubectl get pods -l ...``)."""
    return f"{LABEL_EVALUATION}={label_value(evaluation)}"


def labels_for(evaluation: str, step: Step | None = None) -> dict[str, str]:
    """Labels on every object of an Evaluation: ``kubectl get pods -l assay.dev/evaluation=NAME`` works
    for names of up to 63 characters."""
    labels = {LABEL_EVALUATION: label_value(evaluation), LABEL_MANAGED_BY: MANAGER}
    if step is not None:
        labels[LABEL_STEP] = step.value
    return labels


def annotations_for(evaluation: str) -> dict[str, str]:
    """The full name where the label could not carry it (none otherwise: objects stay as they were)."""
    return {} if label_value(evaluation) == evaluation else {ANNOTATION_EVALUATION: evaluation}


def evaluation_of(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """The Evaluation name of a Job or task pod: the annotation when the label is its shortened form
    (a pool's pod annotations cannot redirect a pod to another Evaluation), else the label."""
    label, full = labels[LABEL_EVALUATION], annotations.get(ANNOTATION_EVALUATION, "")
    return full if full and label_value(full) == label else label


# --- EvaluationSets -----------------------------------------------------------------------------------

LABEL_EVALUATION_SET = f"{GROUP}/evaluation-set"
DNS_SUBDOMAIN_MAX = 253


def set_child_name(evaluation_set: str, combination: str) -> str:
    """The child Evaluation of one combination: ``<set>-<hash of the combination>``, a DNS subdomain of at
    most 253 characters whatever the set's name (else ``<prefix>-<hash of set>-<hash of combination>``)."""
    return _fitted(evaluation_set, f"-{_hash(combination)}", DNS_SUBDOMAIN_MAX, dots=True)
