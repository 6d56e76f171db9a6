"""The controller's loop body: read the indices, call render/rollup, write — once.

One :class:`Controller` per operator process (kept in kopf's memo). kopf's event handlers only ask it to
reconcile an Evaluation or a pool (:class:`~assay.controller.coalescer.Coalescer` folds bursts of events);
a reconcile reads only the in-memory indices, decides with the pure functions of :mod:`assay.render` and
:mod:`assay.rollup`, applies the few actions, and writes the whole status in one merge patch when it
differs from what is stored.
"""

from __future__ import annotations

import logging
import secrets as token_source
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import kopf
from pydantic import ValidationError

from assay.admission import describe
from assay.api import (
    ConditionType,
    Evaluation,
    EvaluationStatus,
    Phase,
    Reason,
    ResourcePool,
    ResourcePoolStatus,
    find_condition,
    parse_quantity,
)
from assay.api.resources import task_resources
from assay.contract import Step, first_step
from assay.controller import metrics
from assay.controller.admission.reads import evaluation_problems
from assay.controller.coalescer import Coalescer
from assay.controller.indexes import EvaluationKey, every, first, pool_from_index, slim_pod
from assay.controller.kube import Cluster, CreateRefused, is_gone
from assay.controller.pacing import ProgressPacer
from assay.controller.settings import OperatorSettings
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
    Claimant,
    CreateRefusal,
    Observation,
    Plan,
    QueueState,
    QueueVerdict,
    admit,
    demand_of,
    holds_quota,
    is_progress_only,
    owned_jobs,
    parse_quota,
    plan_evaluation,
    pods_of,
    status_changes,
    transition_notices,
)
from assay.rollup.budgets import (
    BudgetVerdicts,
    Charge,
    Standing,
    budget_notices,
    budget_statuses,
    charge_of,
    judge,
    next_change,
    selects_by_label,
    standings_of,
)
from assay.rollup.evaluation import may_report_after_expiry
from assay.rollup.observed import job_finished, job_suspended, parse_time
from assay.rollup.pools import NodeInfo, pool_status, show_quantity
from assay.rollup.tasks import status_task_seconds

logger = logging.getLogger(__name__)

ACCEPTED = Acceptance(accepted=True)
TERMINAL_PHASES = frozenset(phase.value for phase in Phase if phase.is_terminal)
# A Job this process created shows up in the index within this long (its watch event), or was deleted.
CREATED_JOB_VISIBLE_WITHIN_SECONDS = 30.0


@dataclass
class Indices:
    """The kopf indices the controller reads (captured at start-up)."""

    evaluations: kopf.Index[EvaluationKey, Any] | None = None
    jobs: kopf.Index[EvaluationKey, Any] | None = None
    pods: kopf.Index[EvaluationKey, Any] | None = None
    pools: kopf.Index[str, ResourcePool] | None = None
    nodes: kopf.Index[str, NodeInfo] | None = None
    namespaces: kopf.Index[str, dict[str, str]] | None = None  # labels by namespace name


@dataclass(frozen=True)
class PoolRound:
    """One look at a pool: its quota queue, its members (Evaluations that may run), its budgets."""

    state: QueueState
    members: dict[EvaluationKey, Evaluation]
    standings: list[Standing]
    verdicts: BudgetVerdicts
    charges: list[Charge]  # every Evaluation of the pool, as budgets see it (empty without budgets)


def _held_by_budget(evaluation: Evaluation) -> bool:
    """Whether the Evaluation's status says a budget holds it back (Queued or Suspended for money)."""
    for type_ in (ConditionType.QUEUED, ConditionType.SUSPENDED):
        found = find_condition(evaluation.status.conditions, type_.value)
        if found is not None and found.is_true and found.reason == Reason.BUDGET_EXHAUSTED.value:
            return True
    return False


@dataclass
class _Memory:
    """What this process remembers between reconciles; all of it can be lost (restart) without harm."""

    # Status as last written and the resourceVersion it got, by uid, until the index shows that version
    # (till then the index may still show the older status).
    written: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # Admitted to their pool's quota but perhaps without Jobs in the index yet, by pool.
    admitted: dict[str, set[EvaluationKey]] = field(default_factory=dict)
    # (uid, object name) of debug objects already ensured.
    ensured: set[tuple[str, str]] = field(default_factory=set)
    # Jobs this process created and the index does not show yet, by (uid, step): when (monotonic clock).
    # A reconcile in between (our own status write comes back first) would otherwise create them again.
    created: dict[tuple[str, Step], float] = field(default_factory=dict)
    # Creates the apiserver refused for good, by uid, until the Failed status they cause is written.
    refused: dict[str, CreateRefusal] = field(default_factory=dict)
    # Parsed Evaluations, by uid, with the resourceVersion they were parsed at.
    parsed: dict[str, tuple[str, Evaluation]] = field(default_factory=dict)
    # Parsed statuses, by uid, with the stored dict they were parsed from (compared by identity).
    statuses: dict[str, tuple[Mapping[str, Any], EvaluationStatus]] = field(default_factory=dict)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    # Namespace labels as last seen, so that only a change of labels recounts budgets.
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # Pool status as last written, by uid (the index may lag behind our own write).
    pools_written: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Pool generations seen, so that the pool's own status writes do not re-check its Evaluations.
    pool_generations: dict[str, int | None] = field(default_factory=dict)
    # When this process first saw each budget, by (pool, budget), until the pool's status keeps it.
    budget_since: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # Charges of the pool's Evaluations (see rollup.budgets), by uid, with the stored status they are from.
    charges: dict[str, tuple[Mapping[str, Any], Charge | None]] = field(default_factory=dict)
    # The last state of deleted final-step pods of debug runs without results, by Evaluation and pod uid: a
    # debug pod reports its summary only when stopped, and is gone moments later, maybe before a reconcile.
    deleted_reports: dict[EvaluationKey, dict[str, Mapping[str, Any]]] = field(default_factory=dict)


class Controller:
    """Reconciles Evaluations and pools from the indices; see the module docstring."""

    def __init__(self, settings: OperatorSettings, cluster: Cluster, indices: Indices) -> None:
        self.settings = settings
        self.cluster = cluster
        self.indices = indices
        self.options = RenderOptions(
            runner_command=settings.runner_command,
            default_runtime_image=settings.default_runtime_image,
            pvc_root=settings.pvc_root,
            debug_port=settings.debug_port,
            job_retention_seconds=settings.job_retention_seconds,
            job_deadline_grace_seconds=settings.job_deadline_grace_seconds,
        )
        self.memory = _Memory()
        self.progress = ProgressPacer(
            settings.status_detail_interval_seconds, settings.status_progress_writes_per_second
        )
        retry = {"retry_initial": settings.retry_initial_seconds, "retry_max": settings.retry_max_seconds}
        self.evaluations: Coalescer[EvaluationKey] = Coalescer(
            "reconcile evaluation",
            self.reconcile_evaluation,
            batch_seconds=settings.reconcile_batch_seconds,
            **retry,
        )
        self.pools: Coalescer[str] = Coalescer(
            "reconcile pool",
            self.reconcile_pool,
            batch_seconds=settings.pool_status_interval_seconds,
            **retry,
        )

    async def close(self) -> None:
        await self.evaluations.close()
        await self.pools.close()

    # --- reading the indices -------------------------------------------------------------------------

    def evaluation(self, key: EvaluationKey) -> tuple[dict[str, Any], Evaluation] | None:
        """The raw Evaluation and its model, with the status this process last wrote."""
        raw = first(self.indices.evaluations, key)
        if raw is None:
            return None
        metadata = raw.get("metadata", {})
        uid, version = metadata.get("uid", ""), metadata.get("resourceVersion", "")
        cached = self.memory.parsed.get(uid)
        if cached is not None and cached[0] == version:
            model = cached[1]
        else:
            try:
                model = Evaluation.model_validate({**raw, "status": {}})
            except ValidationError as exc:
                logger.warning("Evaluation %s/%s cannot be read and is ignored: %s", *key, exc)
                return None
            self.memory.parsed[uid] = (version, model)
        stored = self.stored_status(raw)
        known = self.memory.statuses.get(uid)
        if known is not None and known[0] is stored:  # the same stored status: no need to parse it again
            status = known[1]
        else:
            try:
                status = EvaluationStatus.model_validate(stored)
            except ValidationError:
                status = EvaluationStatus()
            self.memory.statuses[uid] = (stored, status)
        return raw, model.model_copy(update={"status": status})

    def stored_status(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """The Evaluation's status: as this process last wrote it until the index shows that write."""
        metadata = raw.get("metadata") or {}
        uid = metadata.get("uid", "")
        written = self.memory.written.get(uid)
        if written is not None:
            if written[0] != metadata.get("resourceVersion"):
                return written[1]
            del self.memory.written[uid]  # the index caught up: keep one copy, not two
        status: Mapping[str, Any] = raw.get("status") or {}
        return status

    def evaluations_in(self, pool: str) -> Iterator[tuple[EvaluationKey, Evaluation]]:
        """The pool's Evaluations that may still run: not suspended, cancelled or finished.

        Decided on the raw objects first, so that a pool with thousands of idle Evaluations costs a
        dictionary lookup for each of them, not a parse."""
        for key in self._unfinished_in(pool, running_only=True):
            found = self.evaluation(key)
            if found is not None:
                yield key, found[1]

    def _unfinished_in(self, pool: str, *, running_only: bool = False) -> Iterator[EvaluationKey]:
        """Keys of the pool's Evaluations not in a terminal phase (and, with ``running_only``, neither
        suspended nor cancelled), read from the raw objects."""
        index = self.indices.evaluations
        for key in list(index or {}):
            raw = first(index, key)
            spec = (raw or {}).get("spec") or {}
            if raw is None or spec.get("pool") != pool:
                continue
            if running_only and (spec.get("suspend") or spec.get("cancel")):
                continue
            if self.stored_status(raw).get("phase") not in TERMINAL_PHASES:
                yield key

    def jobs_of(self, key: EvaluationKey, evaluation: Evaluation) -> dict[Any, Any]:
        return owned_jobs(every(self.indices.jobs, key), evaluation.metadata.uid or "")

    # --- admission and quota ---------------------------------------------------------------------------

    async def acceptance(self, evaluation: Evaluation, pool: ResourcePool | None) -> Acceptance:
        """The webhook's checks again, for clusters where the webhook is not installed."""
        problems = await evaluation_problems(self.cluster, evaluation.spec, evaluation.namespace, pool)
        if not problems:
            return ACCEPTED
        reason = problems[0].reason.value
        return Acceptance(
            accepted=False, reason=reason, message=describe(problems), retryable=reason in RETRYABLE_REASONS
        )

    def queue_state(self, pool: ResourcePool) -> PoolRound:
        """Who holds the pool's quota, who may start now, who waits (and where), what budgets hold back."""
        quota = parse_quota(pool.spec.quota)
        admitted = self.memory.admitted.setdefault(pool.name, set())
        claimants, members = [], {}
        for key, evaluation in self.evaluations_in(pool.name):  # neither suspended, cancelled nor finished
            spec = evaluation.spec
            accepted = find_condition(evaluation.status.conditions, ConditionType.ACCEPTED.value)
            if accepted is not None and not accepted.is_true:
                continue
            per_task = task_resources(spec, pool).requests
            holding = key in admitted or holds_quota(evaluation, self.jobs_of(key, evaluation))
            created = evaluation.metadata.creation_timestamp or datetime.now(UTC)
            claimants.append(
                Claimant(f"{key[0]}/{key[1]}", created, demand_of(per_task, spec.tasks, quota), holding)
            )
            members[key] = evaluation
        charges = list(self._charges_in(pool, members)) if pool.spec.budgets and pool.spec.pricing else []
        standings, verdicts = self.budget_round(pool, charges, {c.key for c in claimants if c.holding})
        # Held back by a budget: not in the quota queue (it waits for money, not for resources).
        free = [c for c in claimants if c.key not in verdicts.blocked]
        return PoolRound(admit(quota, free), members, standings, verdicts, charges)

    def budget_round(
        self, pool: ResourcePool, charges: list[Charge], holding: set[str]
    ) -> tuple[list[Standing], BudgetVerdicts]:
        """The pool's budgets now, from every Evaluation of the pool, and what they hold back (the waiting
        are the unfinished ones that neither hold resources nor were suspended by hand)."""
        if not pool.spec.budgets or pool.spec.pricing is None:
            return [], BudgetVerdicts()
        now = datetime.now(UTC)
        stored = self.memory.pools_written.get(pool.metadata.uid or pool.name) or pool.status.to_api()
        since = {b["name"]: b["since"] for b in stored.get("budgets") or [] if b.get("since")}
        known = {
            budget.name: parse_time(since.get(budget.name))
            or self.memory.budget_since.setdefault((pool.name, budget.name), now)
            for budget in pool.spec.budgets
        }
        labels = {}
        if selects_by_label(pool):  # only the namespaces the pool's Evaluations are in
            for namespace in {c.namespace for c in charges}:
                if (found := first(self.indices.namespaces, namespace)) is not None:
                    labels[namespace] = found
        standings = standings_of(pool, known, charges, now, labels)
        holders = [c for c in charges if c.key in holding]
        waiting = [c for c in charges if c.may_run and c.key not in holding]
        return standings, judge(standings, holders, waiting, pool.spec.pricing.currency, now)

    def _charges_in(
        self, pool: ResourcePool, members: Mapping[EvaluationKey, Evaluation]
    ) -> Iterator[Charge]:
        """Every Evaluation of the pool as budgets see it (finished ones too: they spent money)."""
        index = self.indices.evaluations
        for key in list(index or {}):
            raw = first(index, key)
            if raw is None or (raw.get("spec") or {}).get("pool") != pool.name:
                continue
            name = f"{key[0]}/{key[1]}"
            if key in members:
                charge = charge_of(name, members[key], pool, may_run=True)
            else:
                uid = (raw.get("metadata") or {}).get("uid", "")
                stored = self.stored_status(raw)
                cached = self.memory.charges.get(uid)
                if cached is not None and cached[0] is stored:
                    charge = cached[1]
                else:
                    try:
                        evaluation = Evaluation.model_validate({**raw, "status": stored})
                    except ValidationError:
                        continue
                    charge = charge_of(name, evaluation, pool, may_run=False)
                    self.memory.charges[uid] = (stored, charge)
            if charge is not None:
                yield charge

    def queue_verdict(
        self, key: EvaluationKey, evaluation: Evaluation, pool: ResourcePool | None
    ) -> QueueVerdict:
        if pool is None or not (pool.spec.quota or pool.spec.budgets):
            return QueueVerdict(admitted=True)
        round_ = self.queue_state(pool)
        state, name = round_.state, f"{key[0]}/{key[1]}"
        if (budget := round_.verdicts.message(name)) is not None:
            return QueueVerdict(admitted=False, budget=budget)
        if name in state.admitted or name not in state.positions:
            return QueueVerdict(admitted=True)
        quota = parse_quota(pool.spec.quota)
        wanted = demand_of(task_resources(evaluation.spec, pool).requests, evaluation.spec.tasks, quota)
        zero = Decimal(0)
        usage = ", ".join(
            f"{res} {show_quantity(res, state.in_use.get(res, zero))} of {show_quantity(res, limit)} "
            f"in use, needs {show_quantity(res, wanted.get(res, zero))}"
            for res, limit in quota.items()
        )
        position = state.positions[name]
        return QueueVerdict(
            admitted=False, position=position, message=f"position {position} in the queue; {usage}"
        )

    # --- the Evaluation reconcile --------------------------------------------------------------------

    async def reconcile_evaluation(self, key: EvaluationKey) -> None:
        found = self.evaluation(key)
        if found is None:
            return
        raw, evaluation = found
        if evaluation.metadata.deletion_timestamp is not None:
            return  # the garbage collector removes what it owns
        with metrics.reconcile_timer("evaluation"):
            pool = pool_from_index(self.indices.pools, evaluation.spec.pool)
            jobs = self.jobs_of(key, evaluation)
            for step in jobs:
                self.memory.created.pop((evaluation.metadata.uid or "", step), None)
            indexed = every(self.indices.pods, key)
            seen = {pod["metadata"].get("uid") for pod in indexed}
            reported = [p for uid, p in self.memory.deleted_reports.get(key, {}).items() if uid not in seen]
            pods = pods_of(indexed + reported, jobs)
            phase = evaluation.status.phase
            settled = bool(jobs) or phase in (Phase.RUNNING, Phase.SUSPENDED) or (phase and phase.is_terminal)
            acceptance = ACCEPTED if settled else await self.acceptance(evaluation, pool)
            # Between the quota decision and remembering it there is no await: two Evaluations reconciled
            # concurrently cannot both take the last free GPUs.
            verdict = self.queue_verdict(key, evaluation, pool)
            uid = evaluation.metadata.uid or ""
            admitted = self.memory.admitted.setdefault(evaluation.spec.pool, set())

            def decide() -> Plan:
                observed = Observation(jobs=jobs, pods=pods, refused=self.memory.refused.get(uid))
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
                self.memory.refused[uid] = refusal
                plan = decide()
                await self._apply(evaluation, pool, jobs, plan)
            if plan.delete_jobs or plan.status.results is not None:
                self.memory.deleted_reports.pop(key, None)  # read, or of no more use
            flush_at = await self._write_status(key, raw, evaluation, pool, plan)
            if plan.phase not in (Phase.RUNNING, Phase.QUEUED):
                # Idle (suspended, finished, not accepted): rarely read again, so not worth keeping parsed.
                self.memory.parsed.pop(uid, None)
                self.memory.statuses.pop(uid, None)
                self.memory.refused.pop(uid, None)
            wake = [t for t in (plan.recheck_at, flush_at) if t is not None]
            self.evaluations.wake_at(key, min(wake) if wake else None)

    async def _apply(
        self, evaluation: Evaluation, pool: ResourcePool | None, jobs: Mapping[Any, Any], plan: Plan
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
                if retention is not None:  # the outcome is in the status: Kubernetes may delete the Job now
                    await self.cluster.patch_job_spec(namespace, job["metadata"]["name"], retention)
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
            if needs_generated_secret(evaluation) and (uid, "secret") not in self.memory.ensured:
                length = self.settings.debug_password_length
                password = token_source.token_urlsafe(length)[:length]  # 6 random bits a character
                await self.cluster.create(debug_secret_for(evaluation, password))
                self.memory.ensured.add((uid, "secret"))
            if (uid, "service") not in self.memory.ensured:
                await self.cluster.create(debug_service_for(evaluation, self.options))
                self.memory.ensured.add((uid, "service"))
        for step in plan.create_jobs:
            if self._created_lately(uid, step):
                continue
            created = await self.cluster.create(job_for(evaluation, pool, step, self.options))
            self.memory.created[(uid, step)] = time.monotonic()
            created_at = evaluation.metadata.creation_timestamp
            if created and step == first_step(evaluation.spec.tasks) and created_at:
                metrics.observe_jobs_created(evaluation.spec.pool, created_at)

    def _created_lately(self, uid: str, step: Step) -> bool:
        """True while a Job this process just created may still be on its way to the index."""
        when = self.memory.created.get((uid, step))
        if when is None:
            return False
        if time.monotonic() - when > CREATED_JOB_VISIBLE_WITHIN_SECONDS:
            del self.memory.created[(uid, step)]  # never seen: deleted meanwhile; create it again
            return False
        return True

    async def _write_status(
        self,
        key: EvaluationKey,
        raw: Mapping[str, Any],
        evaluation: Evaluation,
        pool: ResourcePool | None,
        plan: Plan,
    ) -> datetime | None:
        """Write the status if it changed; returns when to write a deferred detail-only change."""
        uid = evaluation.metadata.uid or ""
        stored = self.stored_status(raw)
        patch = status_changes(stored, plan.status)
        if patch is None:
            # Nothing to write, but a restarted or newly leading operator must still export what it sees.
            self._observe(evaluation, pool, plan.status)
            return None
        if is_progress_only(stored, patch):
            due = self.progress.due(uid)
            if due is not None:  # the next reconcile then writes the then-current progress
                return datetime.now(UTC) + timedelta(seconds=due - time.monotonic())
        try:
            result = await self.cluster.patch_evaluation_status(key[0], key[1], patch)
        except Exception as exc:
            if is_gone(exc):
                return None
            raise
        version = (result.get("metadata") or {}).get("resourceVersion", "")
        self.memory.written[uid] = (version, dict(result.get("status") or {}))
        self.progress.wrote(uid)
        before, after = evaluation.status, plan.status
        for notice in transition_notices(before, after):
            kopf.event(
                kopf.Body(cast(Any, dict(raw))),
                type=notice.type,
                reason=notice.reason,
                message=notice.message,
            )
        self._count_rejection(before, after)
        self._observe(evaluation, pool, after)
        # Budgets count running tasks by their start times: a task that starts or stops moves them.
        moved_money = pool is not None and pool.spec.budgets and before.task_counts != after.task_counts
        if before.phase != after.phase or before.queue_position != after.queue_position or moved_money:
            self.pools.request(evaluation.spec.pool)
        return None

    def _count_rejection(self, before: EvaluationStatus, after: EvaluationStatus) -> None:
        old = find_condition(before.conditions, ConditionType.ACCEPTED.value)
        new = find_condition(after.conditions, ConditionType.ACCEPTED.value)
        if new is not None and not new.is_true and (old is None or old.is_true or old.reason != new.reason):
            metrics.count_admission_rejection(new.reason, "controller")

    def _observe(self, evaluation: Evaluation, pool: ResourcePool | None, status: EvaluationStatus) -> None:
        counts = status.task_counts
        task_seconds = status_task_seconds(status, status.completion_time)
        gpus = float(task_resources(evaluation.spec, pool).gpus) if pool is not None else 0.0
        cost = status.cost
        terminal = status.phase is not None and status.phase.is_terminal
        metrics.observe_evaluation(
            evaluation.metadata.uid or "",
            namespace=evaluation.namespace,
            pool=evaluation.spec.pool,
            phase=(status.phase or Phase.PENDING).value,
            task_counts=counts.model_dump(exclude={"total"}) if counts is not None else None,
            gpu_seconds=task_seconds * gpus,
            cost=float(cost.accrued) if cost is not None and cost.accrued else 0.0,
            currency=cost.currency if cost is not None else "",
            terminal=terminal,
        )
        if terminal and evaluation.status.phase != status.phase:
            done = [t.completion_time for t in status.tasks if t.completion_time is not None]
            metrics.observe_status_final(evaluation.spec.pool, max(done) if done else datetime.now(UTC))

    def pod_deleted(self, key: EvaluationKey, body: Mapping[str, Any]) -> None:
        """Keep the last state of a deleted pod that may carry a debug run's summary (see _Memory)."""
        found = self.evaluation(key)
        if found is None or not may_report_after_expiry(found[1], body):
            return
        uid = body.get("metadata", {}).get("uid", "")
        self.memory.deleted_reports.setdefault(key, {})[uid] = slim_pod(body)

    def forget_evaluation(self, key: EvaluationKey, uid: str, pool: str) -> None:
        """An Evaluation was deleted: drop what this process remembers of it; its quota frees."""
        self.evaluations.forget(key)
        self.memory.deleted_reports.pop(key, None)
        self.memory.written.pop(uid, None)
        self.memory.parsed.pop(uid, None)
        self.memory.statuses.pop(uid, None)
        self.memory.refused.pop(uid, None)
        self.memory.charges.pop(uid, None)
        self.progress.forget(uid)
        self.memory.admitted.get(pool, set()).discard(key)
        self.memory.ensured = {item for item in self.memory.ensured if item[0] != uid}
        for step in [step for (owner, step) in self.memory.created if owner == uid]:
            del self.memory.created[(uid, step)]
        metrics.forget_evaluation(uid)
        self.pools.request(pool)

    # --- pools -------------------------------------------------------------------------------------------

    def pool_changed(self, name: str, generation: int | None) -> None:
        """A pool event: when it appeared, went away or its spec changed, recount it and re-check the
        Evaluations that name it (an unknown pool may now exist, a quota may have grown).

        An event of the status alone (our own write coming back) recounts nothing: the count changes only
        with its Evaluations, nodes and namespaces, and at the moments ``next_change`` wakes it for. A
        recount here made a pool with budgeted work running rewrite its status about once a second, its
        ``spent`` having grown a little since the last write.
        """
        known = name in self.memory.pool_generations
        if known and self.memory.pool_generations[name] == generation:
            return
        self.pools.request(name)
        if generation is None:
            self.memory.pool_generations.pop(name, None)
        else:
            self.memory.pool_generations[name] = generation
        for key in self._unfinished_in(name):
            self.evaluations.request(key)

    def node_changed(self, name: str, info: NodeInfo | None) -> None:
        """A node appeared, changed its labels or allocatable resources, or went away: pools recount."""
        if self.memory.nodes.get(name) == info:
            return
        if info is None:
            self.memory.nodes.pop(name, None)
        else:
            self.memory.nodes[name] = info
        for pool in list(self.indices.pools or {}):
            self.pools.request(pool)

    def namespace_changed(self, name: str, labels: dict[str, str] | None) -> None:
        """A namespace appeared, was relabelled or went away: budgets that select namespaces by label
        count again (its Evaluations' spending may have moved into or out of their scope)."""
        if self.memory.namespace_labels.get(name) == labels:
            return
        if labels is None:
            self.memory.namespace_labels.pop(name, None)
        else:
            self.memory.namespace_labels[name] = labels
        for pool_name in list(self.indices.pools or {}):
            pool = pool_from_index(self.indices.pools, pool_name)
            if pool is not None and selects_by_label(pool):
                self.pools.request(pool_name)

    async def reconcile_pool(self, name: str) -> None:
        pool = pool_from_index(self.indices.pools, name)
        if pool is None:
            metrics.forget_pool(name)  # deleted: its series go, its budgets are enforced no more
            return
        with metrics.reconcile_timer("pool"):
            round_ = self.queue_state(pool)
            state, members = round_.state, round_.members
            if self.settings.namespaces and not members:
                # Watching some namespaces only: the pool's other users are invisible here, so its
                # status is left to the operator that sees them (or to the next Evaluation here).
                return
            for key, evaluation in members.items():
                name_of = f"{key[0]}/{key[1]}"
                held = round_.verdicts.message(name_of) is not None
                if name_of in state.admitted or held != _held_by_budget(evaluation):
                    self.evaluations.request(key)  # capacity or money is free for it now, or gone
            admitted = self.memory.admitted.get(pool.name, set())
            holders = [
                evaluation.spec
                for key, evaluation in members.items()
                if key in admitted or holds_quota(evaluation, self.jobs_of(key, evaluation))
            ]
            nodes = [first(self.indices.nodes, node) for node in list(self.indices.nodes or {})]
            uid = pool.metadata.uid or name
            stored = self.memory.pools_written.get(uid) or pool.status.to_api()
            current = pool.model_copy(update={"status": ResourcePoolStatus.model_validate(stored)})
            now = datetime.now(UTC)
            currency = pool.spec.pricing.currency if pool.spec.pricing is not None else ""
            budgets = budget_statuses(round_.standings, round_.verdicts, currency)
            desired = pool_status(
                current, [n for n in nodes if n is not None], holders, len(state.positions), now, budgets
            )
            wakes = [w for s in round_.standings if (w := next_change(s, round_.charges, now)) is not None]
            self.pools.wake_at(name, min(wakes) if wakes else None)
            metrics.set_budgets(
                name,
                currency,
                {
                    b.name: {
                        "spent": float(b.spent),
                        "committed": float(b.committed),
                        "remaining": float(b.remaining),
                    }
                    for b in budgets
                },
            )
            metrics.set_queue_length(name, desired.queued_evaluations)
            metrics.set_pool_resources(
                name,
                {k: float(parse_quantity(v)) for k, v in desired.capacity.items()},
                {k: float(parse_quantity(v)) for k, v in desired.in_use.items()},
            )
            if status_changes(stored, desired) is None:
                return  # equal but for lastUpdated, which moves only with a real change
            desired = desired.model_copy(update={"last_updated": datetime.now(UTC)})
            patch = status_changes(stored, desired)
            if patch is not None:
                try:
                    await self.cluster.patch_pool_status(name, patch)
                except Exception as exc:
                    if not is_gone(exc):
                        raise
                    return
                self.memory.pools_written[uid] = desired.to_api()
                for notice in budget_notices(current.status.budgets, desired.budgets):
                    kopf.event(
                        kopf.Body(cast(Any, pool.to_api())),
                        type=notice.type,
                        reason=notice.reason,
                        message=notice.message,
                    )
