"""Debug mode objects: the ClusterIP Service in front of the debug port and the generated password Secret."""

from __future__ import annotations

import base64
from typing import Any

from assay.api import Evaluation
from assay.render.jobs import RenderOptions, owner_reference
from assay.render.names import DEBUG_SECRET_KEY, LABEL_EVALUATION, debug_name, label_value, labels_for


def debug_enabled(evaluation: Evaluation) -> bool:
    return evaluation.spec.debug is not None and evaluation.spec.debug.enabled


def needs_generated_secret(evaluation: Evaluation) -> bool:
    """Debug mode without a passwordSecretRef: the operator generates the password into ``<eval>-debug``."""
    debug = evaluation.spec.debug
    return debug is not None and debug.enabled and debug.password_secret_ref is None


def debug_service_for(evaluation: Evaluation, options: RenderOptions) -> dict[str, Any]:
    """A ClusterIP Service reaching the debug server of the Evaluation's task pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": debug_name(evaluation.name),
            "namespace": evaluation.namespace,
            "labels": labels_for(evaluation.name),
            "ownerReferences": [owner_reference(evaluation)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_EVALUATION: label_value(evaluation.name)},
            "ports": [
                {"name": "debug", "port": options.debug_port, "targetPort": "debug", "protocol": "TCP"}
            ],
        },
    }


def debug_secret_for(evaluation: Evaluation, password: str) -> dict[str, Any]:
    """The owned Secret holding a generated debug password (created once; never updated or logged)."""
    metadata = {
        "name": debug_name(evaluation.name),
        "namespace": evaluation.namespace,
        "labels": labels_for(evaluation.name),
        "ownerReferences": [owner_reference(evaluation)],
    }
    return password_secret(metadata, password)


def password_secret(metadata: dict[str, Any], password: str) -> dict[str, Any]:
    """A Secret holding a debug password under the key the task pods read it from."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "data": {DEBUG_SECRET_KEY: base64.b64encode(password.encode()).decode()},
    }
