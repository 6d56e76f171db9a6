"""The controller: the pieces of one operator process, wired together.

One :class:`Controller` per operator process (kept in kopf's memo). kopf's event handlers only ask it to
reconcile an Evaluation or a pool; a :class:`~assay.controller.coalescer.Coalescer` for each folds bursts of
events and runs one reconcile at a time per object. The work is done by one module per concern:

- :mod:`~assay.controller.evaluation_cache`: Evaluations from the index, parsed once, with our own writes;
- :mod:`~assay.controller.pool_queue`: a pool's quota queue and budgets, assembled for rollup to judge;
- :mod:`~assay.controller.evaluation_reconciler`: decide with render and rollup, apply the plan's actions;
- :mod:`~assay.controller.status_writer`: one status patch per change, its Events and metrics;
- :mod:`~assay.controller.pool_reconciler`: the pool's count and status, and which events can change them;
- :mod:`~assay.controller.relevance`: which Job and pod events can change an Evaluation's status.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kopf

from assay.api import ResourcePool
from assay.controller import metrics
from assay.controller.coalescer import Coalescer
from assay.controller.evaluation_cache import EvaluationCache
from assay.controller.evaluation_reconciler import EvaluationReconciler
from assay.controller.indexes import EvaluationIndex, EvaluationKey, ObjectsIndex, PodIndex, first
from assay.controller.kube import Cluster
from assay.controller.kueue import KueueView
from assay.controller.pacing import ProgressPacer
from assay.controller.pool_queue import PoolQueue
from assay.controller.pool_reconciler import PoolReconciler
from assay.controller.relevance import EventFilter
from assay.controller.settings import OperatorSettings
from assay.controller.status_writer import StatusWriter
from assay.render import RenderOptions
from assay.rollup.pools import NodeInfo


@dataclass
class Indices:
    """The kopf indices the controller reads (captured at start-up)."""

    evaluations: EvaluationIndex | None = None
    jobs: ObjectsIndex | None = None
    pods: PodIndex | None = None
    pools: kopf.Index[str, ResourcePool] | None = None
    nodes: kopf.Index[str, NodeInfo] | None = None
    namespaces: kopf.Index[str, dict[str, str]] | None = None  # labels by namespace name
    kueue: KueueView = field(default_factory=lambda: KueueView(installed=False))


def render_options(settings: OperatorSettings) -> RenderOptions:
    return RenderOptions(
        runner_command=settings.runner_command,
        default_runtime_image=settings.default_runtime_image,
        pvc_root=settings.pvc_root,
        debug_port=settings.debug_port,
        job_retention_seconds=settings.job_retention_seconds,
        job_deadline_grace_seconds=settings.job_deadline_grace_seconds,
    )


class Controller:
    """Reconciles Evaluations and pools from the indices; see the module docstring."""

    def __init__(self, settings: OperatorSettings, cluster: Cluster, indices: Indices) -> None:
        self.settings = settings
        self.cluster = cluster
        self.indices = indices
        retry_initial, retry_max = settings.retry_initial_seconds, settings.retry_max_seconds
        self.evaluations: Coalescer[EvaluationKey] = Coalescer(
            "reconcile evaluation",
            self._reconcile_evaluation,
            batch_seconds=settings.reconcile_batch_seconds,
            max_running=settings.concurrent_reconciles,
            retry_initial=retry_initial,
            retry_max=retry_max,
        )
        self.pools: Coalescer[str] = Coalescer(
            "reconcile pool",
            self._reconcile_pool,
            batch_seconds=settings.pool_status_interval_seconds,
            retry_initial=retry_initial,
            retry_max=retry_max,
        )
        self.cache = EvaluationCache(indices.evaluations)
        self.queue = PoolQueue(self.cache, indices.jobs, indices.namespaces)
        pacer = ProgressPacer(
            settings.status_detail_interval_seconds,
            settings.status_progress_writes_per_second,
            age_fraction=settings.status_detail_interval_age_fraction,
            max_interval=settings.status_detail_interval_max_seconds,
        )
        self.writer = StatusWriter(cluster, self.cache, pacer, pool_moved=self.pools.request)
        self.evaluation_reconciler = EvaluationReconciler(
            cluster,
            self.cache,
            self.queue,
            self.writer,
            render_options(settings),
            pools=indices.pools,
            pods=indices.pods,
            debug_password_length=settings.debug_password_length,
            kueue=indices.kueue,
        )
        self.pool_reconciler = PoolReconciler(
            cluster,
            self.cache,
            self.queue,
            pools=indices.pools,
            nodes=indices.nodes,
            request_pool=self.pools.request,
            request_evaluation=self.evaluations.request,
            watches_some_namespaces=bool(settings.namespaces),
            kueue_installed=indices.kueue.installed,
        )
        self.relevance = EventFilter()  # which Job and pod events can change an Evaluation's status
        # What kopf's handlers call besides the coalescers' request().
        self.pool_changed = self.pool_reconciler.pool_changed
        self.node_changed = self.pool_reconciler.node_changed
        self.namespace_changed = self.pool_reconciler.namespace_changed
        self.pod_deleted = self.evaluation_reconciler.pod_deleted

    async def close(self) -> None:
        await self.evaluations.close()
        await self.pools.close()

    def task_pod_changed(self, key: EvaluationKey, *, on_its_way: bool) -> None:
        """A task pod changed what the rollup reads. A pod on its way to running changes only progress
        (:func:`~assay.controller.relevance.pod_on_its_way`): when a progress write of its Evaluation is
        planned already, that write carries it, and reconciling now would only plan it again."""
        if on_its_way:
            stored = first(self.indices.evaluations, key)
            if stored is not None and self.writer.progress.planned(stored.uid):
                return
        self.evaluations.request(key)

    async def _reconcile_evaluation(self, key: EvaluationKey) -> None:
        self.evaluations.wake_at(key, await self.evaluation_reconciler.reconcile(key))

    async def _reconcile_pool(self, name: str) -> None:
        self.pools.wake_at(name, await self.pool_reconciler.reconcile(name))

    def forget_evaluation(self, key: EvaluationKey, uid: str, pool: str) -> None:
        """An Evaluation was deleted: drop what this process remembers of it; its quota frees."""
        self.evaluations.forget(key)
        self.cache.forget(uid)
        self.queue.forget(key, uid, pool)
        self.writer.forget(uid)
        self.evaluation_reconciler.forget(key, uid)
        metrics.forget_evaluation(uid)
        self.pools.request(pool)
