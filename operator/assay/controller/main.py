"""``assay-operator``: run the Assay controller (all namespaces or a given list) against any kubeconfig.

Examples::

    assay-operator --kubeconfig .cluster/kubeconfig                 # every namespace, no webhook
    assay-operator --namespace team-a --namespace team-b            # only these namespaces
    assay-operator --kubeconfig .cluster/kubeconfig --webhook local # + the admission webhook on 127.0.0.1

In a cluster (manifests/), the environment configures it: ``ASSAY_OPERATOR_PEERING_NAME`` (leader
election), ``ASSAY_OPERATOR_WEBHOOK_TLS`` (``self-signed`` | ``files`` | ``local`` | ``none``),
``ASSAY_OPERATOR_WEBHOOK_SERVICE``, ``ASSAY_OPERATOR_WEBHOOK_CONFIGURATION``,
``ASSAY_OPERATOR_WEBHOOK_CERT_DIR``, ``ASSAY_OPERATOR_WEBHOOK_CLIENT_CA`` (only callers with a certificate
it signed are answered), ``ASSAY_OPERATOR_NAMESPACE`` (its own namespace), plus every
``ASSAY_OPERATOR_*`` setting of :class:`~assay.controller.settings.OperatorSettings`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import kopf
import uvloop
from kubernetes_asyncio import client

from assay.controller import fastjson, gc_tuning
from assay.controller.admission.server import (
    WEBHOOK_MODES,
    configure_webhook,
    remove_local_webhook_configuration,
)
from assay.controller.health import ApiProbe, WebhookListening, serving_health
from assay.controller.kopf_handlers import add_kueue, build_registry, load_client_configuration
from assay.controller.kube import api_client
from assay.controller.kueue import kueue_installed
from assay.controller.leadership import (
    DEFAULT_PEERING_NAME,
    Identity,
    configure_peering,
    ensure_peering_object,
    peer_identity,
    register_peer,
)
from assay.controller.metrics import DEFAULT_METRICS_PORT, start_metrics_server
from assay.controller.reachability import EndlessBackoffs, Reachability, RetryNoiseFilter
from assay.controller.settings import OperatorSettings

logger = logging.getLogger("assay.operator")

DEFAULT_HEALTH_PORT = 8080


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
        "--webhook-client-ca",
        default=env("ASSAY_OPERATOR_WEBHOOK_CLIENT_CA", ""),
        help="PEM file of the CA that signs the apiserver's webhook client certificate: callers without a "
        "certificate it signed are refused (self-signed and files modes; default: any caller)",
    )
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
    args = parser.parse_args(argv)
    if args.webhook_client_ca and args.webhook not in ("self-signed", "files"):
        parser.error(
            "--webhook-client-ca is for the in-cluster webhook (--webhook self-signed or files), "
            f"not --webhook {args.webhook}"
        )
    if args.webhook_client_ca and not os.path.isfile(args.webhook_client_ca):
        parser.error(
            f"--webhook-client-ca {args.webhook_client_ca}: no such file (the PEM bundle of the CA that "
            "signs the apiserver's webhook client certificate)"
        )
    return args


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
        # The webhook and probe servers log every request they answer: a line per admission review.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
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
    webhook: WebhookListening,
    identity: Identity,
) -> None:
    """kopf's operator, with the probes served and the API probed beside it."""
    await load_client_configuration(args.kubeconfig)
    api = api_client()
    memo.kueue_installed = await kueue_installed(api)
    if memo.kueue_installed:
        add_kueue(registry)
    logger.info("Kueue is %sinstalled", "" if memo.kueue_installed else "not ")
    probe = ApiProbe(api, reachability)
    reachability.on_suspect = probe.wake
    try:
        async with serving_health(args.health_port, probe, webhook):
            await kopf.operator(
                registry=registry,
                clusterwide=not namespaces,
                namespaces=list(namespaces),
                memo=memo,
                standalone=None if args.peering else True,
                identity=identity,
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
    # Served behind the webhook Service (not --webhook local/none): a replica is Ready once it listens.
    webhook = WebhookListening(expected=args.webhook not in ("none", "local"))
    identity = peer_identity()

    async def configure(settings: kopf.OperatorSettings, **_: object) -> None:
        # Retry for as long as the API is away (kopf's default gives up after about a minute, and a
        # peering keep-alive that gives up stops the operator); readiness and the log tell the outage.
        settings.networking.error_backoffs = EndlessBackoffs()
        configure_peering(settings, peering_name=args.peering or None)
        await load_client_configuration(args.kubeconfig)
        if args.peering:  # the replicas meet in this object; mandatory peering waits for it forever
            async with client.ApiClient() as api:
                await ensure_peering_object(api, args.peering)
                await register_peer(api, settings, identity)
        await configure_webhook(settings, args, webhook)

    kopf.on.startup(id="assay-operator-settings", registry=registry)(configure)

    if args.webhook == "local":

        async def remove_webhook(**_: object) -> None:
            await remove_local_webhook_configuration(args.namespaces or ())

        kopf.on.cleanup(id="assay-local-webhook", registry=registry)(remove_webhook)

    if args.metrics_port:
        start_metrics_server(args.metrics_port)
    memo = kopf.Memo(assay_settings=settings, kubeconfig=args.kubeconfig)
    if settings.fast_json:
        fastjson.install()
    if settings.tune_gc:
        gc_tuning.tune()
    loop_factory = uvloop.new_event_loop if settings.event_loop == "uvloop" else None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run_operator(args, registry, memo, namespaces, reachability, webhook, identity))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
