"""Per-task resources and prices: the pool's defaults merged with an Evaluation's own requests.

Shared by admission (bounds checks), the controller (rendering pod resources, quota) and cost estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from assay.api.evaluation import DEFAULT_AUTO_RELEASE_SECONDS, EvaluationSpec
from assay.api.pool import Pricing, ResourcePool
from assay.api.quantity import parse_quantity

GPU_RESOURCE_SUFFIX = "/gpu"  # nvidia.com/gpu, amd.com/gpu, ...
MEMORY_RESOURCES = frozenset({"memory", "ephemeral-storage"})
_GIB = Decimal(2**30)


def is_gpu(resource: str) -> bool:
    """True for extended GPU resources such as nvidia.com/gpu."""
    return resource.endswith(GPU_RESOURCE_SUFFIX)


def is_extended(resource: str) -> bool:
    """Extended resources (domain-prefixed, e.g. nvidia.com/gpu) cannot be overcommitted: limit = request."""
    return "/" in resource and not resource.startswith("kubernetes.io/")


def effective_requests(spec: EvaluationSpec, pool: ResourcePool | None) -> dict[str, str]:
    """Per-task requests: the pool's defaults, overridden by ``spec.resources``; zero requests dropped.

    Keys keep the pool's order, then the spec's extra names; values are the quantity strings as written.
    """
    requests: dict[str, str] = {}
    if pool is not None:
        for bounds in pool.spec.resources:
            if bounds.default is not None:
                requests[bounds.name] = bounds.default
    requests.update(spec.resources or {})
    return {name: value for name, value in requests.items() if parse_quantity(value) != 0}


@dataclass(frozen=True)
class TaskResources:
    """The ``resources`` block of a task container."""

    requests: dict[str, str]
    limits: dict[str, str]

    def to_api(self) -> dict[str, dict[str, str]]:
        body = {"requests": self.requests}
        if self.limits:
            body["limits"] = self.limits
        return body

    @property
    def gpus(self) -> Decimal:
        """GPUs one task gets (0 = set NVIDIA_VISIBLE_DEVICES="" so it sees none)."""
        return sum((parse_quantity(v) for k, v in self.requests.items() if is_gpu(k)), Decimal(0))


def task_resources(spec: EvaluationSpec, pool: ResourcePool | None) -> TaskResources:
    """Requests from :func:`effective_requests`; limits equal requests for GPUs and other extended resources
    (Kubernetes requires it), none for cpu and memory so tasks may burst."""
    requests = effective_requests(spec, pool)
    limits = {name: value for name, value in requests.items() if is_extended(name)}
    return TaskResources(requests=requests, limits=limits)


def total_requests(per_task: Mapping[str, str], tasks: int) -> dict[str, Decimal]:
    """Requests of ``tasks`` tasks together, as exact decimals (for quota)."""
    return {name: parse_quantity(value) * tasks for name, value in per_task.items()}


def effective_auto_release_seconds(spec: EvaluationSpec, pool: ResourcePool | None) -> int:
    """The Evaluation's autoReleaseSeconds, else the pool's default, else 3600; 0 means never."""
    if spec.auto_release_seconds is not None:
        return spec.auto_release_seconds
    if pool is not None and pool.spec.auto_release is not None:
        return pool.spec.auto_release.default_seconds
    return DEFAULT_AUTO_RELEASE_SECONDS


def price_per_hour(per_task: Mapping[str, str], tasks: int, pricing: Pricing) -> Decimal:
    """Hourly price of ``tasks`` tasks; memory-like resources are priced per GiB, the rest per unit."""
    total = Decimal(0)
    for name, value in per_task.items():
        price = pricing.per_hour.get(name)
        if price is None:
            continue
        amount = parse_quantity(value)
        if name in MEMORY_RESOURCES:
            amount /= _GIB
        total += amount * Decimal(price) * tasks
    return total


def cost_for(per_task: Mapping[str, str], tasks: int, pricing: Pricing, seconds: float) -> Decimal:
    """Cost of ``tasks`` tasks held for ``seconds``, rounded to cents."""
    hourly = price_per_hour(per_task, tasks, pricing)
    return format_money(hourly * Decimal(str(seconds)) / 3600)


def format_money(amount: Decimal) -> Decimal:
    """Rounded to two decimals, half up (``str()`` of the result is what status shows)."""
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def estimated_max_cost(spec: EvaluationSpec, pool: ResourcePool | None) -> Decimal | None:
    """What the Evaluation costs at most: every task held until auto-release, at the pool's prices.

    None when the pool has no pricing or the Evaluation is never released (autoReleaseSeconds 0).
    """
    if pool is None or pool.spec.pricing is None:
        return None
    seconds = effective_auto_release_seconds(spec, pool)
    if seconds == 0:
        return None
    return cost_for(effective_requests(spec, pool), spec.tasks, pool.spec.pricing, seconds)
