"""Prometheus metrics of the operator, and the few calls the controller makes to move them.

Every metric is named ``assay_*``; the Grafana dashboard (deploy/grafana/assay.json) and the README's metric
table use exactly these names. The controller calls the functions at the bottom (module-level, backed by one
:class:`OperatorMetrics` on the default registry) from its handlers:

=========================================  ===================================================================
call                                       when
=========================================  ===================================================================
``observe_evaluation(...)``                after every status write of an Evaluation (phase, pool, task
                                           counts, usage so far); idempotent: fine on every reconcile
``forget_evaluation(uid)``                 when an Evaluation is deleted
``observe_jobs_created(pool, created)``    right after the first Job of an Evaluation was created
``observe_status_final(pool, done_at)``    right after the status write that made the phase terminal
``reconcile_timer(handler)``               ``with`` around a handler body
``set_queue_length(pool, n)``              when a pool's queue is recomputed
``set_pool_resources(pool, cap, used)``    when a pool's status is written
``set_budgets(pool, currency, figures)``   when a pool's budgets are recomputed (spent, committed and
                                           remaining per budget, as of that reconcile); a budget no longer
                                           in ``figures`` loses its series
``forget_pool(pool)``                      when a pool is deleted (all its series go)
``count_admission_rejection(reason, by)``  when the webhook (``by="webhook"``) or the controller
                                           (``by="controller"``) rejects a spec
``start_metrics_server(port)``             once at start-up (a daemon thread; never blocks the event loop)
=========================================  ===================================================================

Labels are bounded: pool and namespace names, phases and reasons; never an Evaluation name or any secret.
Only the acting (leader) replica runs handlers, so a paused replica exports no series rather than stale ones.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DEFAULT_METRICS_PORT = 9090

# Jobs should appear within seconds of `kubectl apply`; status should turn final seconds after the last pod.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class _Seen:
    """What this process last exported for one Evaluation, so a repeated observation changes nothing."""

    namespace: str
    pool: str
    phase: str
    task_counts: Mapping[str, int]
    gpu_seconds: float
    cost: float


class OperatorMetrics:
    """All of Assay's metrics on one registry (a fresh registry per instance keeps unit tests independent)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.evaluations = Gauge(
            "assay_evaluations",
            "Evaluations known to the operator, by phase and pool.",
            ["pool", "phase"],
            registry=registry,
        )
        self.tasks = Gauge(
            "assay_tasks",
            "Tasks of non-terminal Evaluations, by phase and pool.",
            ["pool", "phase"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            "assay_reconcile_duration_seconds",
            "Time spent in one reconcile handler call.",
            ["handler"],
            buckets=RECONCILE_BUCKETS,
            registry=registry,
        )
        self.jobs_created_latency = Histogram(
            "assay_jobs_created_latency_seconds",
            "From an Evaluation's creation to its first Job being created.",
            ["pool"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.status_final_latency = Histogram(
            "assay_status_final_latency_seconds",
            "From the last task finishing to the status showing a terminal phase.",
            ["pool"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.gpu_seconds = Counter(
            "assay_gpu_seconds",
            "GPU-seconds used by evaluation tasks (requested GPUs times running time).",
            ["pool", "namespace"],
            registry=registry,
        )
        self.cost = Counter(
            "assay_cost",
            "Accrued cost of evaluation tasks from the pool's pricing, in the pool's currency.",
            ["pool", "namespace", "currency"],
            registry=registry,
        )
        self.queue_length = Gauge(
            "assay_queue_length",
            "Evaluations waiting for pool quota (phase Queued).",
            ["pool"],
            registry=registry,
        )
        self.pool_capacity = Gauge(
            "assay_pool_capacity",
            "Allocatable resources summed over a pool's nodes.",
            ["pool", "resource"],
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "assay_pool_in_use",
            "Resources requested by a pool's running tasks.",
            ["pool", "resource"],
            registry=registry,
        )
        self.budget_money = {
            figure: Gauge(
                f"assay_budget_{figure}",
                f"Money {what} of a pool budget's current window, in the pool's currency.",
                ["pool", "budget", "currency"],
                registry=registry,
            )
            for figure, what in (
                ("spent", "spent"),
                ("committed", "committed (most the unfinished evaluations can still cost)"),
                ("remaining", "remaining (spend limit minus spent)"),
            )
        }
        self.admission_rejections = Counter(
            "assay_admission_rejections",
            "Specs rejected at admission (webhook) or by the controller's re-check, by reason.",
            ["reason", "by"],
            registry=registry,
        )
        self._seen: dict[str, _Seen] = {}
        # The (budget, currency) label pairs exported per pool, so that a removed budget's series can go.
        self._budgets: dict[str, set[tuple[str, str]]] = {}
        # The resources exported per pool, so that a resource the pool no longer has stops being exported.
        self._resources: dict[str, set[str]] = {}
        # kopf runs sync handlers in worker threads: the bookkeeping below must not interleave.
        self._lock = threading.Lock()

    # --- per-evaluation state --------------------------------------------------------------------------

    def observe_evaluation(
        self,
        uid: str,
        *,
        namespace: str,
        pool: str,
        phase: str,
        task_counts: Mapping[str, int] | None = None,
        gpu_seconds: float = 0.0,
        cost: float = 0.0,
        currency: str = "",
        terminal: bool = False,
    ) -> None:
        """Export an Evaluation's current phase, task counts and usage so far.

        ``task_counts`` maps task phase to count (e.g. ``{"running": 3, "succeeded": 1}``); tasks of terminal
        evaluations are not exported, so ``assay_tasks`` shows live work. ``gpu_seconds`` and ``cost`` are the
        evaluation's totals so far: the counters grow by the difference to the last observation. The first
        sighting of an evaluation that is already terminal (e.g. after an operator restart) exports its
        phase but adds no usage: whoever watched it run counted that.
        """
        counts = {} if terminal or task_counts is None else dict(task_counts)
        with self._lock:
            previous = self._seen.get(uid)
            if previous is not None:
                self.evaluations.labels(previous.pool, previous.phase).dec()
                for task_phase, n in previous.task_counts.items():
                    self.tasks.labels(previous.pool, task_phase).dec(n)
            self.evaluations.labels(pool, phase).inc()
            for task_phase, n in counts.items():
                self.tasks.labels(pool, task_phase).inc(n)

            if previous is None and terminal:
                base_gpu, base_cost = gpu_seconds, cost
            elif previous is None:
                base_gpu, base_cost = 0.0, 0.0
            else:
                base_gpu, base_cost = previous.gpu_seconds, previous.cost
            if gpu_seconds > base_gpu:
                self.gpu_seconds.labels(pool, namespace).inc(gpu_seconds - base_gpu)
            if cost > base_cost:
                self.cost.labels(pool, namespace, currency).inc(cost - base_cost)
            self._seen[uid] = _Seen(
                namespace, pool, phase, counts, max(gpu_seconds, base_gpu), max(cost, base_cost)
            )

    def forget_evaluation(self, uid: str) -> None:
        """Drop a deleted Evaluation from the phase and task gauges (counters keep what it used)."""
        with self._lock:
            previous = self._seen.pop(uid, None)
            if previous is None:
                return
            self.evaluations.labels(previous.pool, previous.phase).dec()
            for task_phase, n in previous.task_counts.items():
                self.tasks.labels(previous.pool, task_phase).dec(n)

    # --- latencies and durations -----------------------------------------------------------------------

    def observe_jobs_created(self, pool: str, created_at: datetime, now: datetime | None = None) -> None:
        """Latency from the Evaluation's ``metadata.creationTimestamp`` to its Jobs existing."""
        self.jobs_created_latency.labels(pool).observe(_seconds_since(created_at, now))

    def observe_status_final(
        self, pool: str, last_task_done_at: datetime, now: datetime | None = None
    ) -> None:
        """Latency from the last task's completion to the terminal status being written."""
        self.status_final_latency.labels(pool).observe(_seconds_since(last_task_done_at, now))

    @contextmanager
    def reconcile_timer(self, handler: str) -> Iterator[None]:
        """Time a handler body, also when it raises (kopf retries it; each try counts)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.reconcile_duration.labels(handler).observe(time.perf_counter() - started)

    # --- pools and admission ---------------------------------------------------------------------------

    def set_queue_length(self, pool: str, length: int) -> None:
        self.queue_length.labels(pool).set(length)

    def set_pool_resources(
        self, pool: str, capacity: Mapping[str, float], in_use: Mapping[str, float]
    ) -> None:
        """Export a pool's capacity and use per resource (quantities as plain numbers: cores, bytes, GPUs).
        A resource the pool had before and has no more (its nodes went away) stops being exported."""
        current = set(capacity) | set(in_use)
        with self._lock:
            for resource in self._resources.get(pool, set()) - current:
                self._remove_resource(pool, resource)
            self._resources[pool] = current
        for resource, amount in capacity.items():
            self.pool_capacity.labels(pool, resource).set(amount)
        for resource in current:
            self.pool_in_use.labels(pool, resource).set(in_use.get(resource, 0.0))

    def set_budgets(self, pool: str, currency: str, figures: Mapping[str, Mapping[str, float]]) -> None:
        """Export each budget's spent, committed and remaining: ``figures[budget][figure]``. The pool's
        budgets not in ``figures`` (removed, renamed, or under another currency) stop being exported: a
        lingering series would show money that no budget enforces any more."""
        current = {(budget, currency) for budget in figures}
        with self._lock:
            for budget, old_currency in self._budgets.get(pool, set()) - current:
                self._remove_budget(pool, budget, old_currency)
            for budget, values in figures.items():
                for figure, gauge in self.budget_money.items():
                    gauge.labels(pool, budget, currency).set(values.get(figure, 0.0))
            if current:
                self._budgets[pool] = current
            else:
                self._budgets.pop(pool, None)

    def forget_pool(self, pool: str) -> None:
        """A deleted pool stops being exported: its budgets, queue length, capacity and use."""
        with self._lock:
            for budget, currency in self._budgets.pop(pool, set()):
                self._remove_budget(pool, budget, currency)
            for resource in self._resources.pop(pool, set()):
                self._remove_resource(pool, resource)
            with contextlib.suppress(KeyError):
                self.queue_length.remove(pool)

    def _remove_resource(self, pool: str, resource: str) -> None:
        for gauge in (self.pool_capacity, self.pool_in_use):
            with contextlib.suppress(KeyError):
                gauge.remove(pool, resource)

    def _remove_budget(self, pool: str, budget: str, currency: str) -> None:
        for gauge in self.budget_money.values():
            gauge.remove(pool, budget, currency)

    def count_admission_rejection(self, reason: str, by: str) -> None:
        """``by`` is ``webhook`` or ``controller``; ``reason`` a Reason value such as ``UnknownPool``."""
        self.admission_rejections.labels(reason, by).inc()


def _seconds_since(then: datetime, now: datetime | None) -> float:
    """Seconds from ``then`` to ``now`` (default: the current time), never negative (clock skew)."""
    if now is None:
        now = datetime.now(then.tzinfo)
    return max(0.0, (now - then).total_seconds())


# --- the process-wide instance the controller uses ------------------------------------------------------

METRICS = OperatorMetrics()

observe_evaluation = METRICS.observe_evaluation
forget_evaluation = METRICS.forget_evaluation
observe_jobs_created = METRICS.observe_jobs_created
observe_status_final = METRICS.observe_status_final
reconcile_timer = METRICS.reconcile_timer
set_queue_length = METRICS.set_queue_length
set_pool_resources = METRICS.set_pool_resources
count_admission_rejection = METRICS.count_admission_rejection
set_budgets = METRICS.set_budgets
forget_pool = METRICS.forget_pool


def start_metrics_server(port: int = DEFAULT_METRICS_PORT, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread (port 0 disables it)."""
    if port:
        start_http_server(port, addr=address, registry=METRICS.registry)
