"""``assay-operator``: run the Assay controller (all namespaces or a given list) against any kubeconfig.

Examples::

    assay-operator --kubeconfig .cluster/kubeconfig                 # every namespace, no webhook
    assay-operator --namespace team-a --namespace team-b            # only these namespaces
    assay-operator --kubeconfig .cluster/kubeconfig --webhook local # + the admission webhook on 127.0.0.1

In a cluster (manifests/), the environment configures it: ``ASSAY_OPERATOR_PEERING_NAME`` (leader
election), ``ASSAY_OPERATOR_WEBHOOK_TLS`` (``self-signed`` | ``files`` | ``local`` | ``none``),
``ASSAY_OPERATOR_WEBHOOK_SERVICE``, ``ASSAY_OPERATOR_WEBHOOK_CONFIGURATION``,
``ASSAY_OPERATOR_WEBHOOK_CERT_DIR``, ``ASSAY_OPERATOR_NAMESPACE`` (its own namespace), plus every
``ASSAY_OPERATOR_*`` setting of :class:`~assay.controller.settings.OperatorSettings`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import hashlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from assay.api import EVALUATION_PLURAL, EVALUATION_SET_PLURAL, GROUP, VERSION
from assay.controller.health import ApiProbe, serving_health
from assay.controller.kopf_handlers import build_registry, load_client_configuration
from assay.controller.kube import api_client
from assay.controller.leadership import DEFAULT_PEERING_NAME, configure_peering, ensure_peering_object
from assay.controller.metrics import DEFAULT_METRICS_PORT, start_metrics_server
from assay.controller.reachability import EndlessBackoffs, Reachability, RetryNoiseFilter
from assay.controller.sets import SET_WEBHOOK_ID
from assay.controller.settings import OperatorSettings
from assay.controller.webhook import WEBHOOK_ID, WEBHOOK_MATCH_CONDITIONS

logger = logging.getLogger("assay.operator")

WEBHOOK_MODES = ("none", "local", "self-signed", "files")
DEFAULT_WEBHOOK_PORT = 9443
DEFAULT_HEALTH_PORT = 8080
DEFAULT_TLS_SECRET = "assay-webhook-tls"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="assay-operator", description="Run the Assay operator (Evaluations and ResourcePools)."
    )
    parser.add_argument(
        "--kubeconfig", default=env("KUBECONFIG"), help="kubeconfig file (default: in-cluster)"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        help="watch only this namespace (repeatable); default: every namespace "
        "(or ASSAY_OPERATOR_NAMESPACES, comma-separated)",
    )
    parser.add_argument(
        "--peering",
        default=env("ASSAY_OPERATOR_PEERING_NAME", ""),
        help=f"kopf peering name for leader election (e.g. {DEFAULT_PEERING_NAME}); empty = standalone",
    )
    parser.add_argument(
        "--webhook",
        choices=WEBHOOK_MODES,
        default=env("ASSAY_OPERATOR_WEBHOOK_TLS", "none"),
        help="serve the validating webhook: local (127.0.0.1, kopf manages the configuration), self-signed "
        "(in-cluster, certificate in a shared Secret), files (certificate files), none",
    )
    parser.add_argument("--webhook-port", type=int, default=int(env("ASSAY_OPERATOR_WEBHOOK_PORT", "0") or 0))
    parser.add_argument("--webhook-service", default=env("ASSAY_OPERATOR_WEBHOOK_SERVICE", "assay-webhook"))
    parser.add_argument(
        "--webhook-configuration",
        default=env("ASSAY_OPERATOR_WEBHOOK_CONFIGURATION", "assay-validating-webhook"),
    )
    parser.add_argument("--webhook-cert-dir", default=env("ASSAY_OPERATOR_WEBHOOK_CERT_DIR", ""))
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("ASSAY_OPERATOR_METRICS_PORT", str(DEFAULT_METRICS_PORT))),
        help="Prometheus /metrics port (0 = off)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=int(env("ASSAY_OPERATOR_HEALTH_PORT", str(DEFAULT_HEALTH_PORT))),
        help="port of /healthz (liveness) and /readyz (readiness: the Kubernetes API answers); 0 = off",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


# Loggers that write whole API responses at DEBUG level (kept at INFO even with --verbose).
SECRET_LEAKING_LOGGERS = ("kubernetes_asyncio.client.rest", "kubernetes.client.rest")


class AdmissionRefusalsAreInfo(logging.Filter):
    """kopf logs every refused admission at ERROR; the mistake is the user's (and answered to them): INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR:
            message = record.getMessage()
            if message.startswith("Webhook ") and "failed permanently" in message:
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def configure_webhook(settings: kopf.OperatorSettings, args: argparse.Namespace) -> None:
    """Set kopf's admission server for the chosen mode (none leaves the controller's own re-check only)."""
    from assay.controller.webhook_tls import (
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
    settings.admission.server = kopf.WebhookServer(
        addr="0.0.0.0", port=port, certfile=str(cert), pkeyfile=str(key)
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


def configure_logging(verbose: bool, reachability: Reachability) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # During an outage every client logs each retry; the log says it once (assay.controller.reachability).
    for handler in logging.getLogger().handlers:
        handler.addFilter(RetryNoiseFilter(reachability, verbose=verbose))
    if not verbose:
        # kopf logs every handled watch event at INFO ("Handler ... succeeded"): noise at this event rate.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # The Kubernetes clients log every response body at DEBUG, Secrets (the debug password) included: never.
    for name in SECRET_LEAKING_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("kopf.objects").addFilter(AdmissionRefusalsAreInfo())


async def run_operator(
    args: argparse.Namespace,
    registry: kopf.OperatorRegistry,
    memo: kopf.Memo,
    namespaces: Sequence[str],
    reachability: Reachability,
) -> None:
    """kopf's operator, with the probes served and the API probed beside it."""
    await load_client_configuration(args.kubeconfig)
    api = api_client()
    probe = ApiProbe(api, reachability)
    reachability.on_suspect = probe.wake
    try:
        async with serving_health(args.health_port, probe):
            await kopf.operator(
                registry=registry,
                clusterwide=not namespaces,
                namespaces=list(namespaces),
                memo=memo,
                standalone=None if args.peering else True,
            )
    finally:
        reachability.on_suspect = None
        await api.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``assay-operator`` console script."""
    args = parse_args(argv)
    reachability = Reachability()
    configure_logging(args.verbose, reachability)
    if args.kubeconfig:
        # kopf logs in with the kubernetes client, which reads KUBECONFIG; the controller's own client too.
        os.environ["KUBECONFIG"] = args.kubeconfig
    settings = OperatorSettings.from_env()
    namespaces = tuple(args.namespaces or settings.namespaces)
    settings = OperatorSettings(**{**settings.__dict__, "namespaces": namespaces})

    registry = build_registry(serve_webhook=args.webhook != "none")

    async def configure(settings: kopf.OperatorSettings, **_: object) -> None:
        # Retry for as long as the API is away (kopf's default gives up after about a minute, and a
        # peering keep-alive that gives up stops the operator); readiness and the log tell the outage.
        settings.networking.error_backoffs = EndlessBackoffs()
        configure_peering(settings, peering_name=args.peering or None)
        await load_client_configuration(args.kubeconfig)
        if args.peering:  # the replicas meet in this object; mandatory peering waits for it forever
            async with client.ApiClient() as api:
                await ensure_peering_object(api, args.peering)
        await configure_webhook(settings, args)

    kopf.on.startup(id="assay-operator-settings", registry=registry)(configure)

    if args.webhook == "local":

        async def remove_webhook(**_: object) -> None:
            await remove_local_webhook_configuration(args.namespaces or ())

        kopf.on.cleanup(id="assay-local-webhook", registry=registry)(remove_webhook)

    if args.metrics_port:
        start_metrics_server(args.metrics_port)
    memo = kopf.Memo(assay_settings=settings, kubeconfig=args.kubeconfig)
    try:
        asyncio.run(run_operator(args, registry, memo, namespaces, reachability))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
