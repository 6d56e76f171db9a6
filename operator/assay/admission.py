"""Checks of an Evaluation against other objects: its pool, its namespace, its debug Secret.

The CRD schema and its CEL rules check what one object can say about itself; these checks need other
objects. They are pure: the validating webhook (``assay.controller.admission``) and the controller both gather
the facts and call them, so a cluster without the webhook still rejects the same things (as condition
``Accepted=False`` with the same reason and message). There is never a fallback to another pool.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from assay.api.common import SecretKeySelector
from assay.api.conditions import Reason
from assay.api.evaluation import EvaluationSpec
from assay.api.pool import ResourcePool, UnlistedResources
from assay.api.quantity import format_quantity, parse_quantity
from assay.api.resources import (
    MEMORY_RESOURCES,
    effective_auto_release_seconds,
    effective_requests,
    is_extended,
    total_requests,
)
from assay.contract import MIN_DEBUG_PASSWORD_LENGTH


@dataclass(frozen=True)
class Problem:
    """Why an Evaluation cannot run: a condition reason and a message that says what to fix."""

    reason: Reason
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def describe(problems: Collection[Problem]) -> str:
    """All problems in one message (for the webhook's rejection and the Accepted condition)."""
    return "; ".join(str(p) for p in problems)


def pool_needs_namespace_labels(pool: ResourcePool) -> bool:
    """True when deciding access needs the namespace's labels (the pool has a namespaceSelector)."""
    return pool.spec.namespace_selector is not None


def namespace_may_use(pool: ResourcePool, namespace: str, namespace_labels: Mapping[str, str] | None) -> bool:
    """Listed in ``namespaces`` or matching ``namespaceSelector``; a pool with neither is open to all."""
    listed, selector = pool.spec.namespaces, pool.spec.namespace_selector
    if listed is None and selector is None:
        return True
    if listed is not None and namespace in listed:
        return True
    return selector is not None and selector.matches(dict(namespace_labels or {}))


def _show(resource: str, value: object) -> str:
    return format_quantity(parse_quantity(str(value)), binary=resource in MEMORY_RESOURCES)


# What a container may request (Kubernetes refuses a Job asking for anything else, and the Evaluation could
# never start): the standard resources, huge pages, or an extended resource named <domain>/<name>.
STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_EXTENDED_RESOURCE_NAME = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def container_may_request(name: str) -> bool:
    """Whether Kubernetes accepts ``name`` as a container resource request."""
    if name in STANDARD_CONTAINER_RESOURCES or name.startswith("hugepages-"):
        return True
    domain = name.split("/", 1)[0]
    return (
        len(name) <= 317
        and _EXTENDED_RESOURCE_NAME.match(name) is not None
        and not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))
        and not name.startswith("requests.")
    )


def _resource_problems(spec: EvaluationSpec, pool: ResourcePool) -> list[Problem]:
    problems = [
        Problem(
            Reason.RESOURCES_OUT_OF_RANGE,
            f"spec.resources[{name}]",
            f"{name} is not a resource a container can request; use cpu, memory, ephemeral-storage, "
            "hugepages-<size> or an extended resource named <domain>/<name>, e.g. nvidia.com/gpu",
        )
        for name in spec.resources or {}
        if not container_may_request(name)
    ]
    if problems:
        return problems
    if pool.spec.unlisted_resources == UnlistedResources.REFUSE:
        listed = ", ".join(b.name for b in pool.spec.resources) or "none"
        problems = [
            Problem(
                Reason.RESOURCE_NOT_LISTED,
                f"spec.resources[{name}]",
                f"pool {pool.name} does not offer {name} (it refuses resources its spec.resources does "
                f"not list; it lists {listed}); remove the request or choose another pool",
            )
            for name in spec.resources or {}
            if pool.bounds_for(name) is None
        ]
        if problems:
            return problems
    requests = effective_requests(spec, pool)
    for name, value in (spec.resources or {}).items():
        bounds = pool.bounds_for(name)
        amount = parse_quantity(value)
        if is_extended(name) and amount != amount.to_integral_value():
            problems.append(
                Problem(
                    Reason.RESOURCES_OUT_OF_RANGE,
                    f"spec.resources[{name}]",
                    f"{value} is not a whole number; {name} can only be requested in whole units",
                )
            )
            continue
        if bounds is None:
            continue
        low = parse_quantity(bounds.min) if bounds.min is not None else None
        high = parse_quantity(bounds.max) if bounds.max is not None else None
        if (low is not None and amount < low) or (high is not None and amount > high):
            shown_low = _show(name, bounds.min) if bounds.min is not None else "0"
            shown_high = _show(name, bounds.max) if bounds.max is not None else "unbounded"
            problems.append(
                Problem(
                    Reason.RESOURCES_OUT_OF_RANGE,
                    f"spec.resources[{name}]",
                    f"{value} is outside pool {pool.name}'s range [{shown_low}, {shown_high}] per task; "
                    f"request between {shown_low} and {shown_high}",
                )
            )
    if problems:
        return problems
    # Tasks run in parallel: an evaluation that needs more than the whole quota would wait forever.
    needed = total_requests(requests, spec.tasks)
    for name, limit in pool.spec.quota.items():
        if needed.get(name, 0) > parse_quantity(limit):
            problems.append(
                Problem(
                    Reason.EXCEEDS_POOL_QUOTA,
                    "spec.tasks",
                    f"{spec.tasks} tasks x {_show(name, requests[name])} {name} need "
                    f"{_show(name, needed[name])} at once, more than pool {pool.name}'s whole quota of "
                    f"{_show(name, limit)}; use fewer tasks or smaller requests",
                )
            )
    return problems


def _auto_release_problem(spec: EvaluationSpec, pool: ResourcePool) -> Problem | None:
    limit = pool.spec.auto_release.max_seconds if pool.spec.auto_release else None
    if limit is None:
        return None
    seconds = effective_auto_release_seconds(spec, pool)
    if seconds == 0 or seconds > limit:
        asked = "0 (never)" if seconds == 0 else f"{seconds}"
        return Problem(
            Reason.AUTO_RELEASE_TOO_LONG,
            "spec.autoReleaseSeconds",
            f"{asked} exceeds pool {pool.name}'s maximum of {limit} seconds; "
            f"set autoReleaseSeconds between 60 and {limit}",
        )
    return None


def _debug_secret_problem(
    ref: SecretKeySelector, namespace: str, lengths: Mapping[str, int] | None
) -> Problem | None:
    """The named debug Secret must exist, hold the key, and the password there must be long enough."""
    where = "spec.debug.passwordSecretRef"
    if lengths is None:
        return Problem(
            Reason.SECRET_NOT_FOUND,
            where,
            f'Secret "{ref.name}" not found in namespace "{namespace}"; create it '
            f"(kubectl create secret generic {ref.name} -n {namespace} "
            f"--from-literal={ref.key}=...) or remove passwordSecretRef for a generated one",
        )
    if ref.key not in lengths:
        return Problem(
            Reason.SECRET_NOT_FOUND,
            where,
            f'Secret "{ref.name}" has no key "{ref.key}"; add it or name the right key',
        )
    if lengths[ref.key] < MIN_DEBUG_PASSWORD_LENGTH:
        return Problem(
            Reason.DEBUG_PASSWORD_TOO_SHORT,
            where,
            f'key "{ref.key}" of Secret "{ref.name}" holds {lengths[ref.key]} characters; a debug password '
            f"needs at least {MIN_DEBUG_PASSWORD_LENGTH} characters (it guards a shell in the task pods): "
            "put a longer one there, or remove passwordSecretRef for a generated one",
        )
    return None


def check_new_evaluation(
    spec: EvaluationSpec,
    *,
    namespace: str,
    pool: ResourcePool | None,
    namespace_labels: Mapping[str, str] | None = None,
    debug_secret_lengths: Mapping[str, int] | None = None,
) -> list[Problem]:
    """Every reason the Evaluation cannot run in its pool; empty when it may.

    ``namespace_labels`` matter only when :func:`pool_needs_namespace_labels`. ``debug_secret_lengths`` are
    the data keys of the Secret named by ``spec.debug.passwordSecretRef`` with the length in characters of
    each value (None: no such Secret); ignored when
    the spec names none.
    """
    if pool is None:
        return [
            Problem(
                Reason.UNKNOWN_POOL,
                "spec.pool",
                f'ResourcePool "{spec.pool}" does not exist; choose one from `kubectl get resourcepools`',
            )
        ]
    if not namespace_may_use(pool, namespace, namespace_labels):
        return [
            Problem(
                Reason.POOL_FORBIDDEN,
                "spec.pool",
                f'namespace "{namespace}" may not use ResourcePool "{pool.name}" (see its spec.namespaces '
                "and spec.namespaceSelector); choose another pool or ask its admin for access",
            )
        ]
    problems = _resource_problems(spec, pool)
    if (auto_release := _auto_release_problem(spec, pool)) is not None:
        problems.append(auto_release)
    secret_ref = spec.debug.password_secret_ref if spec.debug is not None else None
    if secret_ref is not None and (
        secret := _debug_secret_problem(secret_ref, namespace, debug_secret_lengths)
    ):
        problems.append(secret)
    return problems


def check_evaluation_update(
    old: EvaluationSpec, new: EvaluationSpec, *, pool: ResourcePool | None
) -> list[Problem]:
    """Checks for a change of a running Evaluation: only what may change (CEL keeps the rest) is checked.

    Anything else (a suspend, a cancel, a finalizer, a deleted pool) must always go through: the operator
    itself updates Evaluations whose pool may be gone.
    """
    if pool is None or new.auto_release_seconds == old.auto_release_seconds:
        return []
    problem = _auto_release_problem(new, pool)
    return [problem] if problem is not None else []
