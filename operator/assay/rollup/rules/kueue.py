"""Kueue decides: for a pool whose ``spec.admission.queue`` is Kueue, Kueue's view of the Jobs' Workloads
becomes the phase, in place of Assay's quota queue (:func:`assay.rollup.rules.quota.queued`, before it, only
applies the pool's budgets there).

* Waiting (a Job suspended, its Workload not admitted) → ``Queued``, with Kueue's reason and message (the
  QuotaReserved condition: which ClusterQueue, which flavor lacks what).
* Evicted or preempted (and not admitted again) → ``Suspended`` with reason ``Preempted`` or ``Evicted``;
  ``Running`` again once Kueue re-admits it (the Job's finished indexes are kept; predictions resume).
* Kueue not installed → ``Queued`` with reason ``KueueNotInstalled``: never run unqueued.

Assay never sets ``spec.suspend`` of a Job Kueue manages (Kueue would undo it, and an unsuspend would
bypass its quota): :func:`handed_over` turns a plan's Job suspension into the Workloads' ``spec.active``.
Cost accrues only while admitted, as it comes from task pods, which exist only then.
"""

from __future__ import annotations

from dataclasses import replace

from assay.api import ConditionType, Phase, ResourcePool
from assay.contract import Step
from assay.render.kueue import local_queue_of
from assay.rollup.observed import Raw, job_finished
from assay.rollup.plan import Plan
from assay.rollup.rules import running
from assay.rollup.rules.context import AcceptedContext
from assay.rollup.workloads import WorkloadView, view_workload

KUEUE_NOT_INSTALLED = "KueueNotInstalled"
ADMITTED_BY_KUEUE = "AdmittedByKueue"


def uses_kueue(pool: ResourcePool | None) -> bool:
    return pool is not None and pool.uses_kueue


def _live_job(jobs: dict[Step, Raw]) -> tuple[Step, Raw] | None:
    """The unfinished Job (one step runs at a time), if any."""
    return next(((step, job) for step, job in jobs.items() if not job_finished(job)), None)


def held_by_kueue(ctx: AcceptedContext) -> Plan | None:
    """Queued or Suspended (preempted, evicted) by Kueue's verdict; None when Kueue admitted the live Job or
    none is live (the outcome and running rules decide)."""
    if not uses_kueue(ctx.pool):
        return None
    assert ctx.pool is not None
    queue = local_queue_of(ctx.evaluation, ctx.pool) or "?"
    if not ctx.observation.kueue_installed:
        return _queued(
            ctx,
            KUEUE_NOT_INSTALLED,
            f"pool {ctx.spec.pool} hands admission to Kueue, but Kueue is not installed (no CRD "
            "workloads.kueue.x-k8s.io): install Kueue, or set the pool's spec.admission.queue to Assay",
            create=(),
        )
    live = _live_job(dict(ctx.jobs))
    if live is None:
        # Nothing submitted yet, or between steps: submit the next Job (suspended) and wait for Kueue.
        create = running.jobs_to_create(ctx, ctx.tasks(stopped=False))
        if not create:
            return None
        return _queued(ctx, "Submitted", f"submitted to Kueue's LocalQueue {queue}", create=create)
    step, _ = live
    view = view_workload(ctx.observation.workloads.get(step))
    if view.admitted:
        where = f" to ClusterQueue {view.cluster_queue}" if view.cluster_queue else ""
        ctx.conditions.clear(ConditionType.QUEUED, ADMITTED_BY_KUEUE, f"admitted by Kueue{where}")
        return None
    if view.evicted:
        return _evicted(ctx, view)
    return _queued(ctx, view.reason, f"Kueue (LocalQueue {queue}): {view.message}", create=())


def _queued(ctx: AcceptedContext, reason: str, message: str, *, create: tuple[Step, ...]) -> Plan:
    ctx.conditions.set(ConditionType.QUEUED, True, reason, message)
    tasks = ctx.tasks(stopped=bool(ctx.jobs))
    status = ctx.status(Phase.QUEUED, f"waiting for Kueue: {message}", tasks, cost=ctx.cost(tasks))
    return Plan(status=status, create_jobs=create)


def _evicted(ctx: AcceptedContext, view: WorkloadView) -> Plan:
    tasks = ctx.tasks(stopped=True)
    ctx.conditions.set(ConditionType.SUSPENDED, True, view.reason, view.message)
    ctx.conditions.clear(ConditionType.RUNNING, view.reason)
    ctx.conditions.clear(ConditionType.QUEUED, view.reason)
    message = f"{view.reason.lower()} by Kueue: {view.message}; resumes when Kueue admits it again"
    status = ctx.status(Phase.SUSPENDED, message, tasks, cost=ctx.cost(tasks))
    return Plan(status=status, recheck_at=ctx.lifetime.expires_at)


def handed_over(plan: Plan) -> Plan:
    """``plan`` for a pool in Kueue mode: Jobs are never suspended or resumed by Assay; a plan that stops
    them deactivates their Workloads instead, any other unfinished plan keeps (or makes) them active."""
    if plan.suspend_jobs is True:
        active: bool | None = False
    elif plan.phase is not None and plan.phase.is_terminal:
        active = None
    else:
        active = True
    return replace(plan, suspend_jobs=None, workloads_active=active)
