"""Where kopf serves the admission handlers, and with which certificate, for each ``--webhook`` mode.

* ``none``: no server; the controller's own re-check (Accepted=False) is all there is.
* ``local``: on 127.0.0.1 for a cluster whose apiserver runs on this machine, with a fresh self-signed
  certificate and a ValidatingWebhookConfiguration of the operator's own (scoped to the namespaces it
  watches, removed at exit by :func:`remove_local_webhook_configuration`).
* ``self-signed``: in a cluster, the certificate shared by every replica through a Secret, its CA written
  into the installed configuration (:mod:`assay.controller.admission.tls`).
* ``files``: in a cluster, certificate files mounted from elsewhere (cert-manager).

In a cluster, ``--webhook-client-ca`` makes the server complete a TLS handshake only with a client certificate
that CA signed (the apiserver's, see :func:`webhook_server`).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from assay.api import EVALUATION_PLURAL, EVALUATION_SET_PLURAL, GROUP, VERSION
from assay.controller.admission.webhooks import SET_WEBHOOK_ID, WEBHOOK_ID, WEBHOOK_MATCH_CONDITIONS
from assay.controller.health import WebhookListening

logger = logging.getLogger(__name__)

WEBHOOK_MODES = ("none", "local", "self-signed", "files")
DEFAULT_WEBHOOK_PORT = 9443
DEFAULT_TLS_SECRET = "assay-webhook-tls"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReportingWebhookServer:
    """kopf's webhook server that marks ``webhook`` listening once it is: kopf's server yields its client
    configuration right after its socket listens. The replica's readiness waits for it (health.py)."""

    def __init__(self, server: kopf.WebhookServer, webhook: WebhookListening) -> None:
        self.server, self.webhook = server, webhook

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for config in self.server(fn):
            self.webhook.listening = True
            yield config


async def configure_webhook(
    settings: kopf.OperatorSettings, args: argparse.Namespace, webhook: WebhookListening | None = None
) -> None:
    """Set kopf's admission server for the chosen mode (none leaves the controller's own re-check only)."""
    # Imported here: an operator without the webhook never loads the cryptography package.
    from assay.controller.admission.tls import (
        build_self_signed,
        ensure_serving_secret,
        inject_ca_bundle,
        service_dns_names,
    )

    if args.webhook == "none":
        return
    port = args.webhook_port or (DEFAULT_WEBHOOK_PORT if args.webhook != "local" else _free_port())
    if args.webhook == "local":
        # The local cluster's apiserver runs on this machine and calls the operator at localhost. The
        # configuration is the operator's own (scoped to the namespaces it watches, removed at exit).
        certificate = build_self_signed(["localhost"], datetime.now(UTC))
        cert, key = certificate.write_to(Path(tempfile.mkdtemp(prefix="assay-webhook-")))
        settings.admission.server = kopf.WebhookServer(
            addr="127.0.0.1", host="localhost", port=port, certfile=str(cert), pkeyfile=str(key)
        )
        body = local_webhook_configuration(
            local_configuration_name(args.namespaces or ()),
            url=f"https://localhost:{port}",
            ca_pem=certificate.cert_pem,
            namespaces=args.namespaces or (),
        )
        async with client.ApiClient() as api:
            await apply_webhook_configuration(client.AdmissionregistrationV1Api(api), body)
        return
    if args.webhook == "files":
        directory = Path(args.webhook_cert_dir or "/etc/assay/webhook")
        cert, key = directory / "tls.crt", directory / "tls.key"
    else:  # self-signed, shared by all replicas through a Secret; the CA goes into the configuration
        own_namespace = os.environ.get("ASSAY_OPERATOR_NAMESPACE", "assay-system")
        async with client.ApiClient() as api:
            serving = await ensure_serving_secret(
                client.CoreV1Api(api),
                namespace=own_namespace,
                name=DEFAULT_TLS_SECRET,
                dns_names=service_dns_names(args.webhook_service, own_namespace),
            )
            await inject_ca_bundle(
                client.AdmissionregistrationV1Api(api),
                configuration=args.webhook_configuration,
                ca_pem=serving.cert_pem,
            )
        cert, key = serving.write_to()
    server = webhook_server(
        port, cert, key, client_ca=Path(args.webhook_client_ca) if args.webhook_client_ca else None
    )
    settings.admission.server = server if webhook is None else ReportingWebhookServer(server, webhook)


def webhook_server(
    port: int, cert: Path, key: Path, *, client_ca: Path | None, addr: str = "0.0.0.0"
) -> kopf.WebhookServer:
    """The in-cluster server. With ``client_ca``, a caller without a client certificate that CA signed is
    refused during the TLS handshake: only the apiserver (given such a certificate by its admission
    configuration) reaches the handlers, which read Secrets named in the reviewed object. A forged
    AdmissionReview could otherwise learn whether a Secret exists in a namespace its sender cannot read."""
    if client_ca is None:
        return kopf.WebhookServer(addr=addr, port=port, certfile=str(cert), pkeyfile=str(key))
    return kopf.WebhookServer(
        addr=addr,
        port=port,
        certfile=str(cert),
        pkeyfile=str(key),
        verify_mode=ssl.CERT_REQUIRED,
        verify_cafile=str(client_ca),
    )


def local_configuration_name(namespaces: Sequence[str]) -> str:
    """One configuration per set of watched namespaces, so local operators of different tests coexist."""
    digest = hashlib.sha256(",".join(sorted(namespaces)).encode()).hexdigest()[:10]
    return f"assay-local-{digest}.{GROUP}"


def local_webhook_configuration(
    name: str, *, url: str, ca_pem: bytes, namespaces: Sequence[str]
) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration sending Evaluations of ``namespaces`` (all when empty) to ``url``.

    failurePolicy Fail, as installed: an Evaluation the webhook did not see is never admitted. A killed
    local operator leaves the configuration behind (its restart replaces it): creations in its namespaces
    are refused until then, while suspend and cancel do not go to the webhook (WEBHOOK_MATCH_CONDITIONS).
    """
    webhook: dict[str, Any] = {
        "name": WEBHOOK_ID,
        "clientConfig": {"url": f"{url}/{WEBHOOK_ID}", "caBundle": base64.b64encode(ca_pem).decode()},
        "rules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": [VERSION],
                "operations": ["CREATE", "UPDATE"],
                "resources": [EVALUATION_PLURAL],
                "scope": "Namespaced",
            }
        ],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "matchConditions": copy.deepcopy(WEBHOOK_MATCH_CONDITIONS),
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 10,
    }
    if namespaces:
        webhook["namespaceSelector"] = {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(namespaces)}
            ]
        }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "assay-operator"}},
        "webhooks": [webhook, _set_webhook(webhook)],
    }


def _set_webhook(evaluation_webhook: dict[str, Any]) -> dict[str, Any]:
    """The EvaluationSets' webhook: the same server, creations only (no match conditions needed)."""
    url = evaluation_webhook["clientConfig"]["url"].rsplit("/", 1)[0]
    webhook = copy.deepcopy(evaluation_webhook)
    webhook.pop("matchConditions")
    webhook["name"] = SET_WEBHOOK_ID
    webhook["clientConfig"]["url"] = f"{url}/{SET_WEBHOOK_ID}"
    webhook["rules"] = [
        {**webhook["rules"][0], "operations": ["CREATE"], "resources": [EVALUATION_SET_PLURAL]}
    ]
    return webhook


async def apply_webhook_configuration(api: client.AdmissionregistrationV1Api, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    try:
        await api.create_validating_webhook_configuration(cast(Any, body))
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = await api.read_validating_webhook_configuration(name)
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        await api.replace_validating_webhook_configuration(name, cast(Any, body))
    logger.info("Serving the admission webhook locally through ValidatingWebhookConfiguration %s", name)


async def remove_local_webhook_configuration(namespaces: Sequence[str]) -> None:
    async with client.ApiClient() as api:
        try:
            await client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(
                local_configuration_name(namespaces)
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
