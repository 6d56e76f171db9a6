"""The Evaluation reconcile: read the Evaluation, its pool, Jobs and pods from the indices, let the pure
:func:`assay.rollup.plan_evaluation` decide, apply the plan's few actions, write the status once.
"""

from __future__ import annotations

import secrets as token_source
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from assay.admission import describe
from assay.api import Evaluation, Phase, ResourcePool
from assay.contract import Step, first_step
from assay.controller import metrics
from assay.controller.admission.reads import evaluation_problems, find_pool
from assay.controller.evaluation_cache import TERMINAL_PHASE_NAMES, EvaluationCache
from assay.controller.indexes import EvaluationKey, PodIndex, PoolIndex, every, pool_from_index, slim_pod
from assay.controller.kube import Cluster, CreateRefused
from assay.controller.kueue import KueueView, set_workloads_active
from assay.controller.pool_queue import PoolQueue
from assay.controller.status_writer import StatusWriter
from assay.render import (
    RenderOptions,
    debug_secret_for,
    debug_service_for,
    job_deadline_seconds,
    job_for,
    needs_generated_secret,
    retention_of,
)
from assay.rollup import (
    RETRYABLE_REASONS,
    Acceptance,
    CreateRefusal,
    Observation,
    Plan,
    plan_evaluation,
    pods_of,
)
from assay.rollup.evaluation import may_report_after_expiry
from assay.rollup.observed import Raw, job_finished, job_suspended

ACCEPTED = Acceptance(accepted=True)
# A Job this process created shows up in the index within this long (its watch event), or was deleted.
CREATED_JOB_VISIBLE_WITHIN_SECONDS = 30.0


@dataclass
class EvaluationReconciler:
    """One Evaluation at a time (the caller's :class:`~assay.controller.coalescer.Coalescer` sees to it)."""

    cluster: Cluster
    cache: EvaluationCache
    queue: PoolQueue
    writer: StatusWriter
    options: RenderOptions
    pools: PoolIndex | None
    pods: PodIndex | None
    debug_password_length: int
    # Kueue's Workloads of the Jobs, for pools whose admission Kueue decides.
    kueue: KueueView = field(default_factory=lambda: KueueView(installed=False))
    # (uid, object name) of debug objects already ensured.
    ensured: set[tuple[str, str]] = field(default_factory=set)
    # Jobs this process created and the index does not show yet, by (uid, step): when (monotonic clock).
    # A reconcile in between (our own status write comes back first) would otherwise create them again.
    created: dict[tuple[str, Step], float] = field(default_factory=dict)
    # (Evaluation uid, Job uid) of finished Jobs given their retention.
    retained: set[tuple[str, str]] = field(default_factory=set)
    # Creates the apiserver refused for good, by uid, until the Failed status they cause is written.
    refused: dict[str, CreateRefusal] = field(default_factory=dict)
    # The last state of deleted final-step pods of debug runs without results, by Evaluation and pod uid: a
    # debug pod reports its summary only when stopped, and is gone moments later, maybe before a reconcile.
    deleted_reports: dict[EvaluationKey, dict[str, Mapping[str, Any]]] = field(default_factory=dict)

    async def reconcile(self, key: EvaluationKey) -> datetime | None:
        """Reconcile the Evaluation; returns when it wants its next look (None: at its next event).

        A status write that makes the phase terminal is followed at once by a second pass over the status
        just written: a finished Evaluation's Jobs get their retention (and a failed one's still running
        are deleted) only once its outcome is recorded. The event of our own write, which used to bring that
        pass, is skipped (:meth:`EvaluationCache.is_echo`). Other phases need no such pass, and must not
        get one: it would decide again before the index shows the Jobs just suspended or created."""
        wake: datetime | None = None
        for _pass in range(2):
            found = self.cache.get(key)
            if found is None:
                return None
            raw, evaluation = found
            if evaluation.metadata.deletion_timestamp is not None:
                return None  # the garbage collector removes what it owns
            with metrics.reconcile_timer("evaluation"):
                wake = await self._reconcile(key, raw, evaluation)
            if not _became_terminal(evaluation, self.cache.stored_status(raw)):
                break
        return wake

    async def _reconcile(
        self, key: EvaluationKey, raw: Mapping[str, Any], evaluation: Evaluation
    ) -> datetime | None:
        pool = pool_from_index(self.pools, evaluation.spec.pool)
        uid = evaluation.metadata.uid or ""
        jobs = self.queue.jobs_of(key, evaluation)
        for step in jobs:
            self.created.pop((uid, step), None)
        indexed = [pod.raw() for pod in every(self.pods, key)]
        seen = {pod["metadata"].get("uid") for pod in indexed}
        reported = [p for pod_uid, p in self.deleted_reports.get(key, {}).items() if pod_uid not in seen]
        pods = pods_of(indexed + reported, jobs)
        phase = evaluation.status.phase
        settled = bool(jobs) or phase in (Phase.RUNNING, Phase.SUSPENDED) or (phase and phase.is_terminal)
        if pool is None and not settled:
            # The index may not show a pool created moments ago yet (the webhook reads it the same way):
            # an Evaluation is refused for an unknown pool only once the API says so too.
            pool = await find_pool(self.cluster, self.pools, evaluation.spec.pool)
        acceptance = ACCEPTED if settled else await self.acceptance(evaluation, pool)
        # Between the quota decision and remembering it there is no await: two Evaluations reconciled
        # concurrently cannot both take the last free GPUs.
        verdict = self.queue.verdict(key, evaluation, pool)
        admitted = self.queue.admitted_in(evaluation.spec.pool)
        kueue = self.kueue
        workloads = kueue.workloads_of(key[0], jobs) if pool is not None and pool.uses_kueue else {}

        def decide() -> Plan:
            observed = Observation(
                jobs=jobs,
                pods=pods,
                refused=self.refused.get(uid),
                workloads=workloads,
                kueue_installed=kueue.installed,
            )
            plan = plan_evaluation(
                evaluation, pool, observed, acceptance, verdict, datetime.now(UTC), self.options
            )
            if plan.phase == Phase.RUNNING:
                admitted.add(key)
            else:
                admitted.discard(key)
            return plan

        plan = decide()
        refusal = await self._apply(evaluation, pool, jobs, plan)
        if refusal is not None:
            # Sending it again would be refused again: Failed now, what runs is stopped, quota freed.
            self.refused[uid] = refusal
            plan = decide()
            await self._apply(evaluation, pool, jobs, plan)
        await set_workloads_active(self.cluster, key[0], list(workloads.values()), plan.workloads_active)
        if plan.delete_jobs or plan.status.results is not None:
            self.deleted_reports.pop(key, None)  # read, or of no more use
        flush_at = await self.writer.write(key, raw, evaluation, pool, plan.status)
        if plan.phase not in (Phase.RUNNING, Phase.QUEUED):
            self.cache.idle(uid)
            self.refused.pop(uid, None)
        wake = [t for t in (plan.recheck_at, flush_at) if t is not None]
        return min(wake) if wake else None

    async def acceptance(self, evaluation: Evaluation, pool: ResourcePool | None) -> Acceptance:
        """The webhook's checks again, for clusters where the webhook is not installed."""
        problems = await evaluation_problems(self.cluster, evaluation.spec, evaluation.namespace, pool)
        if not problems:
            return ACCEPTED
        reason = problems[0].reason.value
        return Acceptance(
            accepted=False, reason=reason, message=describe(problems), retryable=reason in RETRYABLE_REASONS
        )

    async def _apply(
        self, evaluation: Evaluation, pool: ResourcePool | None, jobs: Mapping[Step, Raw], plan: Plan
    ) -> CreateRefusal | None:
        """Make the plan's actions true; a create refused for good stops there and is returned."""
        try:
            await self._create(evaluation, pool, plan)
        except CreateRefused as exc:
            return exc.refusal
        namespace = evaluation.namespace
        deadline = job_deadline_seconds(evaluation, pool, self.options)
        recorded = evaluation.status.phase is not None and evaluation.status.phase.is_terminal
        for job in jobs.values():
            if job_finished(job):
                retention = retention_of(job, self.options) if recorded else None
                retained = (evaluation.metadata.uid or "", job["metadata"].get("uid", ""))
                # The outcome is in the status: Kubernetes may delete the Job now (asked once, even while the
                # index does not show the retention yet).
                if retention is not None and retained not in self.retained:
                    await self.cluster.patch_job_spec(namespace, job["metadata"]["name"], retention)
                    self.retained.add(retained)
                continue
            if plan.delete_jobs:
                continue
            changes: dict[str, Any] = {}
            if plan.suspend_jobs is not None and job_suspended(job) != plan.suspend_jobs:
                changes["suspend"] = plan.suspend_jobs
            if pool is not None and job["spec"].get("activeDeadlineSeconds") != deadline:
                changes["activeDeadlineSeconds"] = deadline  # autoReleaseSeconds changed
            if changes:
                await self.cluster.patch_job_spec(namespace, job["metadata"]["name"], changes)
        if plan.delete_jobs:
            for job in jobs.values():
                if not job["metadata"].get("deletionTimestamp"):
                    await self.cluster.delete_job(namespace, job["metadata"]["name"])
        return None

    async def _create(self, evaluation: Evaluation, pool: ResourcePool | None, plan: Plan) -> None:
        """The debug objects and the Jobs the plan wants (raises CreateRefused)."""
        uid = evaluation.metadata.uid or ""
        if plan.ensure_debug:
            if needs_generated_secret(evaluation) and (uid, "secret") not in self.ensured:
                length = self.debug_password_length
                password = token_source.token_urlsafe(length)[:length]  # 6 random bits a character
                await self.cluster.create(debug_secret_for(evaluation, password))
                self.ensured.add((uid, "secret"))
            if (uid, "service") not in self.ensured:
                await self.cluster.create(debug_service_for(evaluation, self.options))
                self.ensured.add((uid, "service"))
        for step in plan.create_jobs:
            if self._created_lately(uid, step):
                continue
            created = await self.cluster.create(job_for(evaluation, pool, step, self.options))
            self.created[(uid, step)] = time.monotonic()
            created_at = evaluation.metadata.creation_timestamp
            if created and step == first_step(evaluation.spec.tasks) and created_at:
                metrics.observe_jobs_created(evaluation.spec.pool, created_at)

    def _created_lately(self, uid: str, step: Step) -> bool:
        """True while a Job this process just created may still be on its way to the index."""
        when = self.created.get((uid, step))
        if when is None:
            return False
        if time.monotonic() - when > CREATED_JOB_VISIBLE_WITHIN_SECONDS:
            del self.created[(uid, step)]  # never seen: deleted meanwhile; create it again
            return False
        return True

    def pod_deleted(self, key: EvaluationKey, body: Mapping[str, Any]) -> None:
        """Keep the last state of a deleted pod that may carry a debug run's summary (``deleted_reports``)."""
        found = self.cache.get(key)
        if found is None or not may_report_after_expiry(found[1], body):
            return
        uid = body.get("metadata", {}).get("uid", "")
        self.deleted_reports.setdefault(key, {})[uid] = slim_pod(body)

    def forget(self, key: EvaluationKey, uid: str) -> None:
        """The Evaluation was deleted: drop what is remembered of it."""
        self.deleted_reports.pop(key, None)
        self.refused.pop(uid, None)
        self.ensured = {item for item in self.ensured if item[0] != uid}
        self.retained = {item for item in self.retained if item[0] != uid}
        for step in [step for (owner, step) in self.created if owner == uid]:
            del self.created[(uid, step)]


def _became_terminal(evaluation: Evaluation, stored: Mapping[str, Any]) -> bool:
    """Whether the status now stored is terminal and the one the reconcile started from was not."""
    was_terminal = evaluation.status.phase is not None and evaluation.status.phase.is_terminal
    return not was_terminal and stored.get("phase") in TERMINAL_PHASE_NAMES
