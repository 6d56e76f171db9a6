"""Debug mode with a password the user chose: the Secret holding it, the Evaluation naming it (pure).

The user's password goes into a Secret of the Evaluation's namespace *before* the Evaluation is created
(admission reads it there to check its length), the Evaluation names it in ``spec.debug.passwordSecretRef``,
and once the Evaluation exists the Secret is made its dependent, so deleting the Evaluation deletes it.
:meth:`assay.Client.create` does the three requests; the CLI and the console both go through it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from assay.api import Evaluation
from assay.contract import MIN_DEBUG_PASSWORD_LENGTH
from assay.errors import Invalid
from assay.render.debug import password_secret as secret_holding
from assay.render.names import DEBUG_SECRET_KEY, LABEL_EVALUATION, label_value


def check_password(password: str) -> None:
    """The rule admission applies to a named Secret, checked before anything is created."""
    if len(password) < MIN_DEBUG_PASSWORD_LENGTH:
        raise Invalid(
            f"debug password: {len(password)} characters; it needs at least {MIN_DEBUG_PASSWORD_LENGTH} "
            "(it guards a shell in the task pods), or leave it empty for a generated one"
        )


def password_secret(evaluation: str, password: str) -> dict[str, Any]:
    """The Secret for ``evaluation``'s password; a generated name, so it never meets an existing one."""
    metadata = {
        "generateName": f"{evaluation.rstrip('-')}-debug-password-",
        "labels": {LABEL_EVALUATION: label_value(evaluation)},
    }
    return secret_holding(metadata, password)


def with_debug(body: Mapping[str, Any], secret: str | None = None) -> dict[str, Any]:
    """``body`` in debug mode; with ``secret``, its password is the one in that Secret."""
    changed = copy.deepcopy(dict(body))
    debug: dict[str, Any] = {"enabled": True}
    if secret is not None:
        debug["passwordSecretRef"] = {"name": secret, "key": DEBUG_SECRET_KEY}
    changed.setdefault("spec", {})["debug"] = debug
    return changed


def owned_by(evaluation: Evaluation) -> dict[str, Any]:
    """A patch making the Secret the Evaluation's dependent. Not ``blockOwnerDeletion``: setting that needs
    the right to update the Evaluation's finalizers, which a user who may create Evaluations need not have."""
    reference = {
        "apiVersion": evaluation.api_version,
        "kind": evaluation.kind,
        "name": evaluation.name,
        "uid": evaluation.metadata.uid or "",
    }
    return {"metadata": {"ownerReferences": [reference]}}
