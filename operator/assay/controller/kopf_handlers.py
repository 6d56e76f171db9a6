"""kopf handlers: thin. They only tell the :class:`~assay.controller.reconciler.Controller` what changed.

:func:`build_registry` puts them, the indices and (when served) the admission webhook into a kopf registry
of their own. There are no change-detecting handlers (on.create/on.update/timers/daemons) on Evaluations:
kopf therefore writes nothing to them (no progress or last-handled annotations, no finalizer), and the
status patch of the controller is the only write an Evaluation gets per change.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any, cast

import kopf
import kubernetes_asyncio
from kubernetes_asyncio import client

from assay.api import EVALUATION_PLURAL, EVALUATION_SET_PLURAL, GROUP, POOL_PLURAL, VERSION
from assay.controller import indexes, kueue, sets
from assay.controller.admission import webhooks
from assay.controller.indexes import EvaluationKey, evaluation_key, first
from assay.controller.kube import Cluster, api_client
from assay.controller.reconciler import Controller, Indices
from assay.controller.relevance import pod_on_its_way
from assay.controller.settings import OperatorSettings
from assay.render.names import LABEL_EVALUATION

logger = logging.getLogger(__name__)

TASK_LABELS = {LABEL_EVALUATION: kopf.PRESENT}


async def load_client_configuration(kubeconfig: str | None) -> None:
    """Point kubernetes_asyncio at the cluster: an explicit kubeconfig, else in-cluster, else the default."""
    if kubeconfig:
        await kubernetes_asyncio.config.load_kube_config(config_file=kubeconfig)
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        kubernetes_asyncio.config.load_incluster_config()
    else:
        await kubernetes_asyncio.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))


async def login(*, memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """kopf's credentials, from the same kubeconfig (or service account) as the controller's own client."""
    await load_client_configuration(getattr(memo, "kubeconfig", None))
    config = client.Configuration.get_default_copy()
    header: Any = config.get_api_key_with_prefix("BearerToken")
    if inspect.isawaitable(header):
        header = await header
    scheme, _space, token = str(header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=config.host or "",
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: the operator has no change-detecting handlers, so kopf needs none.

    kopf's default builds one for every event of every watched object (a deep copy of the whole object),
    which showed up as the largest single cost in the operator's profile.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure_watching(settings: kopf.OperatorSettings) -> None:
    """Only task pods and Jobs reach the operator (server-side label selectors); no kopf writes."""
    settings.watching.label_selectors["v1", "pods"] = LABEL_EVALUATION
    settings.watching.label_selectors["batch", "v1", "jobs"] = LABEL_EVALUATION
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf keeps a worker (a task with its queue) per object until it has been idle this long (default
    # 5 s): taking in 2,500 new Evaluations, thousands lived at once, and the process kept that memory.
    settings.queueing.idle_timeout = 1.0
    # Handler logs stay in the log; Kubernetes Events are posted explicitly, on phase changes only.
    settings.posting.loggers = False


async def start_controller(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """Configure kopf, connect the API client and create the Controller (kept in ``memo.controller``)."""
    operator_settings: OperatorSettings = getattr(memo, "assay_settings", None) or OperatorSettings.from_env()
    configure_watching(settings)
    await load_client_configuration(getattr(memo, "kubeconfig", None))
    indices = Indices(
        evaluations=kwargs.get("evaluations_by_key"),
        jobs=kwargs.get("jobs_by_evaluation"),
        pods=kwargs.get("pods_by_evaluation"),
        pools=kwargs.get("pools_by_name"),
        nodes=kwargs.get("nodes_by_name"),
        namespaces=kwargs.get("namespace_labels_by_name"),
        kueue=kueue.KueueView(
            installed=bool(getattr(memo, "kueue_installed", False)),
            workloads=kwargs.get(kueue.WORKLOAD_INDEX),
            job_owners=kwargs.get(kueue.JOB_OWNER_INDEX),
        ),
    )
    # One API client for the process: the controller's writes and the admission webhook's reads.
    memo.cluster = Cluster(api_client(operator_settings.api_connections))
    memo.controller = Controller(operator_settings, memo.cluster, indices)
    set_indices = sets.SetIndices(
        sets=kwargs.get("evaluation_sets_by_key"),
        children=kwargs.get("children_by_set"),
        evaluations=kwargs.get("evaluations_by_key"),
    )
    memo.sets = sets.SetController(operator_settings, memo.cluster, set_indices)
    logger.info("Assay controller started (%s)", ", ".join(operator_settings.namespaces) or "all namespaces")


async def stop_controller(*, memo: kopf.Memo, **_: Any) -> None:
    set_controller: sets.SetController | None = getattr(memo, "sets", None)
    if set_controller is not None:
        await set_controller.close()
    controller: Controller | None = getattr(memo, "controller", None)
    if controller is not None:
        await controller.close()
        await controller.cluster.close()


def _controller(memo: kopf.Memo) -> Controller:
    controller: Controller = memo.controller
    return controller


async def evaluation_changed(
    *, event: kopf.RawEvent, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    controller = _controller(memo)
    key: EvaluationKey = (namespace or "", name)
    memo.sets.child_changed(namespace, body.get("metadata", {}))
    if event.get("type") == "DELETED":
        controller.forget_evaluation(
            key, body.get("metadata", {}).get("uid", ""), body.get("spec", {}).get("pool", "")
        )
        return
    if not controller.cache.is_echo(body.get("metadata", {})):
        controller.evaluations.request(key, urgent=True)  # new or changed: someone waits for it


async def job_changed(
    *,
    event: kopf.RawEvent,
    namespace: str | None,
    labels: kopf.Labels,
    annotations: kopf.Annotations,
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    controller = _controller(memo)
    if controller.relevance.job_changed(body, deleted=event.get("type") == "DELETED"):
        controller.evaluations.request(evaluation_key(namespace, labels, annotations))


async def pod_changed(
    *,
    event: kopf.RawEvent,
    namespace: str | None,
    labels: kopf.Labels,
    annotations: kopf.Annotations,
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    controller = _controller(memo)
    key = evaluation_key(namespace, labels, annotations)
    deleted = event.get("type") == "DELETED"
    if deleted:
        controller.pod_deleted(key, body)
    if controller.relevance.pod_changed(body, deleted=deleted):
        controller.task_pod_changed(key, on_its_way=not deleted and pod_on_its_way(body))


async def pool_changed(
    *, event: kopf.RawEvent, name: str, meta: kopf.Meta, memo: kopf.Memo, **_: Any
) -> None:
    """A pool appeared, changed or went away: recount it, and re-check its Evaluations that wait."""
    deleted = event.get("type") == "DELETED"
    _controller(memo).pool_changed(name, None if deleted else meta.get("generation"))


async def node_changed(*, event: kopf.RawEvent, name: str, memo: kopf.Memo, **_: Any) -> None:
    controller = _controller(memo)
    info = None if event.get("type") == "DELETED" else first(controller.indices.nodes, name)
    controller.node_changed(name, info)


async def namespace_changed(
    *, event: kopf.RawEvent, name: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any
) -> None:
    deleted = event.get("type") == "DELETED"
    _controller(memo).namespace_changed(name, None if deleted else dict(labels))


async def workload_changed(
    *, event: kopf.RawEvent, namespace: str | None, body: kopf.Body, memo: Any, **_: Any
) -> None:
    """Kueue changed its view of one of Assay's Jobs (a wait message, an admission, an eviction)."""
    controller = _controller(memo)
    if controller.relevance.workload_changed(body, deleted=event.get("type") == "DELETED"):
        for key in controller.indices.kueue.evaluations_of(namespace, body):
            controller.evaluations.request(key)


def add_kueue(registry: kopf.OperatorRegistry) -> None:
    """Watch Kueue's Workloads; only where Kueue is installed (kopf waits for resources it watches)."""
    kueue.register(registry, workload_changed)


async def evaluation_set_changed(
    *, event: kopf.RawEvent, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    set_controller: sets.SetController = memo.sets
    if event.get("type") == "DELETED":
        set_controller.forget((namespace or "", name), body.get("metadata", {}).get("uid", ""))
        return
    set_controller.sets.request((namespace or "", name))


def build_registry(*, serve_webhook: bool) -> kopf.OperatorRegistry:
    """Every handler of the operator in one registry; the webhook handler only when a server runs it
    (kopf refuses to start with admission handlers and no server)."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(start_controller)
    kopf.on.cleanup(registry=registry)(stop_controller)
    # Indices: filled before any handler runs.
    kopf.index(GROUP, VERSION, EVALUATION_PLURAL, registry=registry)(indexes.evaluations_by_key)
    kopf.index("batch", "v1", "jobs", labels=TASK_LABELS, registry=registry)(indexes.jobs_by_evaluation)
    kopf.index("", "v1", "pods", labels=TASK_LABELS, registry=registry)(indexes.pods_by_evaluation)
    kopf.index("", "v1", "nodes", registry=registry)(indexes.nodes_by_name)
    kopf.index("", "v1", "namespaces", registry=registry)(indexes.namespace_labels_by_name)
    kopf.index(GROUP, VERSION, POOL_PLURAL, registry=registry)(indexes.pools_by_name)
    kopf.index(GROUP, VERSION, EVALUATION_SET_PLURAL, id="evaluation_sets_by_key", registry=registry)(
        indexes.objects_by_key
    )
    kopf.index(GROUP, VERSION, EVALUATION_PLURAL, registry=registry)(sets.children_by_set)
    # Watch events: each asks the controller to reconcile what it concerns.
    kopf.on.event(GROUP, VERSION, EVALUATION_PLURAL, registry=registry)(evaluation_changed)
    kopf.on.event("batch", "v1", "jobs", labels=TASK_LABELS, registry=registry)(job_changed)
    kopf.on.event("", "v1", "pods", labels=TASK_LABELS, registry=registry)(pod_changed)
    kopf.on.event(GROUP, VERSION, POOL_PLURAL, registry=registry)(pool_changed)
    kopf.on.event("", "v1", "nodes", registry=registry)(node_changed)
    kopf.on.event("", "v1", "namespaces", registry=registry)(namespace_changed)
    kopf.on.event(GROUP, VERSION, EVALUATION_SET_PLURAL, registry=registry)(evaluation_set_changed)
    if serve_webhook:
        webhooks.register(registry)
    return registry
