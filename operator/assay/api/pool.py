"""The ResourcePool resource: a set of nodes, what one task may ask of them, quota and pricing."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, JsonValue

from assay.api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    RESOURCE_NAME_PATTERN,
    ApiModel,
    AssayObject,
    LabelSelector,
    PrinterColumn,
    ResourceKind,
    Timestamp,
    Toleration,
)
from assay.api.conditions import Condition
from assay.api.evaluation import DEFAULT_AUTO_RELEASE_SECONDS
from assay.api.quantity import Quantity

POOL_KIND = "ResourcePool"
POOL_PLURAL = "resourcepools"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"

# CEL: compare quantities whether the apiserver stored them as integers or strings.
_BOUNDS_RULES: list[JsonValue] = [
    {
        "rule": f"!has(self.{low}) || !has(self.{high}) || "
        f"quantity(string(self.{low})).compareTo(quantity(string(self.{high}))) <= 0",
        "messageExpression": f"'{low} ' + string(self.{low}) + ' of ' + self.name + "
        f"' must not exceed its {high} ' + string(self.{high})",
    }
    for low, high in (("min", "max"), ("min", "default"), ("default", "max"))
]


class ResourceBounds(ApiModel):
    """What one task may request of a resource in this pool."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _BOUNDS_RULES})

    name: str = Field(
        description="Resource name, e.g. nvidia.com/gpu, cpu or memory.",
        min_length=1,
        max_length=253,
        pattern=RESOURCE_NAME_PATTERN,
    )
    default: Quantity | None = Field(
        default=None,
        description="Request of a task that does not name this resource (a quantity: 1, 500m, 16Gi); "
        "empty = none.",
    )
    min: Quantity | None = Field(
        default=None, description="Smallest request allowed (a quantity); empty = 0."
    )
    max: Quantity | None = Field(
        default=None, description="Largest request allowed (a quantity); empty = no bound."
    )


class UnlistedResources(StrEnum):
    """What the pool does with a request for a resource its ``resources`` do not list."""

    ALLOW = "Allow"  # granted as asked, with no bounds (and no quota unless spec.quota names it)
    REFUSE = "Refuse"  # refused at admission


class Pricing(ApiModel):
    """Prices used for the cost shown before and while an evaluation runs."""

    currency: str = Field(
        default="USD", description="ISO 4217 currency code.", pattern=r"^[A-Z]{3}$", max_length=3
    )
    per_hour: dict[str, Annotated[str, Field(pattern=DECIMAL_PATTERN, max_length=32)]] = Field(
        default_factory=dict,
        max_length=16,
        description=(
            'Price per unit-hour by resource name, as decimal strings, e.g. {nvidia.com/gpu: "2.50", '
            'cpu: "0.04", memory: "0.005"}; memory is priced per GiB-hour, other resources per unit-hour.'
        ),
    )


class AutoRelease(ApiModel):
    """How long evaluations in this pool may hold their resources."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.maxSeconds) || self.defaultSeconds <= self.maxSeconds",
                    "message": "autoRelease.defaultSeconds must not exceed autoRelease.maxSeconds",
                }
            ]
        }
    )

    default_seconds: int = Field(
        default=DEFAULT_AUTO_RELEASE_SECONDS,
        ge=60,
        le=31_536_000,
        description="autoReleaseSeconds of an Evaluation that sets none.",
    )
    max_seconds: int | None = Field(
        default=None,
        ge=60,
        le=31_536_000,
        description="Largest autoReleaseSeconds an Evaluation may ask for (0 = never is then refused); "
        "empty = no bound.",
    )


class BudgetInterval(StrEnum):
    """How often a budget's window starts again (at 00:00 UTC of its intervalDay)."""

    WEEKLY = "Weekly"
    MONTHLY = "Monthly"
    NONE = "None"  # one window, from when the operator first saw the budget, never renewed


class WhenExhausted(StrEnum):
    """What a budget stops once its money is spent (the names follow Kueue's ClusterQueue stopPolicy)."""

    HOLD = "Hold"  # no new starts; running evaluations finish
    HOLD_AND_DRAIN = "HoldAndDrain"  # no new starts, and running evaluations are suspended


class BudgetScope(ApiModel):
    """Whose Evaluations a budget counts."""

    namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]] | None = Field(
        default=None,
        max_length=256,
        description="Namespaces whose Evaluations in the pool the budget counts. With namespaceSelector too, "
        "matching either suffices; both empty = all of them.",
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Labels of namespaces whose Evaluations in the pool the budget counts (a namespace "
        "relabelled in or out moves its Evaluations' spending with it).",
    )


class Budget(ApiModel):
    """A spend limit on (some of) the pool's Evaluations, enforced: work that does not fit waits."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.intervalDay) || self.interval != 'Weekly' || self.intervalDay <= 7",
                    "message": "intervalDay of a Weekly budget is an ISO weekday, 1 (Monday) to 7 (Sunday)",
                },
                {
                    "rule": "!has(self.intervalDay) || self.interval != 'None'",
                    "message": "a budget with interval None has no intervalDay",
                },
                {
                    "rule": "!has(self.intervalDay) || !has(self.start)",
                    "message": "a budget's windows start on intervalDay or at start, not both",
                },
            ]
        }
    )

    name: str = Field(
        description="Name of the budget, unique in the pool (a DNS label).",
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
    )
    scope: BudgetScope | None = Field(
        default=None, description="Whose Evaluations count; empty = every Evaluation of the pool."
    )
    interval: BudgetInterval = Field(
        default=BudgetInterval.MONTHLY,
        description="Weekly, Monthly or None (one window that never renews); windows start 00:00 UTC.",
    )
    interval_day: int | None = Field(
        default=None,
        ge=1,
        le=28,
        description="Day a window starts: the weekday (1 = Monday .. 7) of a Weekly budget, the day of the "
        "month (1..28) of a Monthly one; empty = 1.",
    )
    # Like AWS Budgets' TimePeriod.Start: windows that begin at a chosen moment rather than at 00:00 UTC,
    # e.g. a team's local midnight or a billing cycle's start. Moving it moves the current window, so a
    # test (tests/integration/test_budgets.py) sees a real rollover seconds away, with no clock faked.
    start: Timestamp | None = Field(
        default=None,
        description="A moment a window starts at (RFC 3339): windows then start every week or month from "
        "it, on its weekday or day of the month and at its time of day (a start on the 29th to 31st starts "
        "a shorter month's window on its last day). With interval None, the one window's start. Empty = "
        "00:00 UTC of intervalDay. Task time from before the operator first saw the budget is never charged.",
        json_schema_extra={"maxLength": 64},  # RFC 3339 is shorter; bounded for CEL's cost estimate
    )
    spend_limit: str = Field(
        description="Most the budget may spend per window, in the pool's currency (decimal string, 500.00).",
        pattern=DECIMAL_PATTERN,
        max_length=32,
    )
    warn_at: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=list,
        max_length=8,
        description="Percentages of spendLimit at which to warn (an Event and condition BudgetWarning).",
    )
    when_exhausted: WhenExhausted = Field(
        default=WhenExhausted.HOLD,
        description="Hold (no new starts) or HoldAndDrain (also suspend running evaluations in scope).",
    )


class AdmissionQueue(StrEnum):
    """Who decides when the pool's Evaluations may start."""

    ASSAY = "Assay"  # Assay's own quota queue (spec.quota, spec.budgets), for clusters without Kueue
    KUEUE = "Kueue"  # Kueue: the Jobs are created suspended in a LocalQueue and Kueue admits them


# The names are Kueue's where a Kueue user would look for them: localQueueName is what Kueue calls the
# LocalQueue a Workload is submitted to (Workload.spec.queueName names a LocalQueue), and
# workloadPriorityClassName is Kueue's WorkloadPriorityClass (the label kueue.x-k8s.io/priority-class).
class PoolAdmission(ApiModel):
    """Who admits the pool's Evaluations: Assay's quota queue, or Kueue (see the README, "with Kueue")."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.queue != 'Kueue' || has(self.localQueueName)",
                    "message": "admission.queue Kueue needs admission.localQueueName: the Kueue LocalQueue "
                    "(in each Evaluation's namespace) its Jobs are submitted to",
                },
                {
                    "rule": "self.queue == 'Kueue' || (!has(self.localQueueName) && "
                    "!has(self.workloadPriorityClassName) && !has(self.minParallelism))",
                    "message": "localQueueName, workloadPriorityClassName and minParallelism are Kueue's: "
                    "set admission.queue: Kueue, or remove them",
                },
            ]
        }
    )

    queue: AdmissionQueue = Field(
        default=AdmissionQueue.ASSAY,
        description="Assay (its own quota queue: spec.quota and spec.budgets decide) or Kueue (each Job is "
        "created suspended with the label kueue.x-k8s.io/queue-name, and Kueue's ClusterQueue quota, "
        "cohorts, fair sharing and preemption decide; Assay never unsuspends such a Job; spec.budgets still "
        "hold new starts).",
    )
    local_queue_name: str | None = Field(
        default=None,
        description="Kueue mode: the LocalQueue, in each Evaluation's namespace, the Jobs are submitted to "
        "(Kueue's label kueue.x-k8s.io/queue-name). An Evaluation labelled kueue.x-k8s.io/queue-name "
        "uses its own instead.",
        max_length=63,  # a label value
        pattern=DNS_SUBDOMAIN_PATTERN,
    )
    workload_priority_class_name: str | None = Field(
        default=None,
        description="Kueue mode: the WorkloadPriorityClass of the Jobs (Kueue's label "
        "kueue.x-k8s.io/priority-class), which orders the queue and decides preemption. An Evaluation "
        "labelled kueue.x-k8s.io/priority-class uses its own instead. Empty = Kueue's default.",
        max_length=63,  # a label value
        pattern=DNS_SUBDOMAIN_PATTERN,
    )
    min_parallelism: int | None = Field(
        default=None,
        ge=1,
        description="Kueue mode: partial admission. Kueue may admit the predict step with as few as this "
        "many tasks running at once when its full count does not fit (annotation "
        "kueue.x-k8s.io/job-min-parallelism); the other tasks run as those finish. Empty = all or nothing.",
    )


class ResourcePoolSpec(ApiModel):
    """Nodes, per-task bounds, quota, access and pricing of the pool."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.budgets) || size(self.budgets) == 0 || has(self.pricing)",
                    "message": "budgets are money in the pool's currency: set spec.pricing too",
                },
                {
                    "rule": "!has(self.admission) || self.admission.queue != 'Kueue' || "
                    "!has(self.quota) || size(self.quota) == 0",
                    "message": "spec.quota is Assay's own queue; a pool whose admission.queue is Kueue has "
                    "its quota in Kueue's ClusterQueue: remove spec.quota",
                },
            ]
        }
    )

    description: str | None = Field(
        default=None, description="What the pool is, for people choosing one.", max_length=1024
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Node labels every task pod requires (copied into the pods' nodeSelector).",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Tolerations copied onto every task pod."
    )
    resources: list[ResourceBounds] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "What one task may request, per resource: default, min and max. Requests outside [min, max] "
            "are rejected; a resource not listed has no default and no bounds."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    unlisted_resources: UnlistedResources = Field(
        default=UnlistedResources.ALLOW,
        description=(
            "A request for a resource that resources does not list: Allow (granted unbounded, counted "
            "only if quota names it) or Refuse (rejected at admission). A GPU pool should list its GPUs or "
            "refuse: condition GPUsUnbounded warns when its nodes offer GPUs it neither lists nor refuses."
        ),
    )
    quota: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description=(
            "Total requests over all running tasks of the pool, per resource; an evaluation that would "
            "exceed it waits in phase Queued (oldest first). Empty = no quota."
        ),
    )
    namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]] | None = Field(
        default=None,
        max_length=256,
        description=(
            "Namespaces whose Evaluations may use the pool. With namespaceSelector too, matching either "
            "suffices; both empty = every namespace."
        ),
    )
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Labels of namespaces whose Evaluations may use the pool."
    )
    pricing: Pricing | None = Field(
        default=None, description="Prices for cost estimates; empty = no cost shown."
    )
    auto_release: AutoRelease | None = Field(
        default=None,
        description="Default and maximum autoReleaseSeconds; empty = default 3600 seconds, no maximum.",
    )
    priority_class_name: str | None = Field(
        default=None,
        description="PriorityClass of the task pods.",
        max_length=253,
        pattern=r"^$|" + DNS_SUBDOMAIN_PATTERN,
    )
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=64,
        description="Annotations copied onto every task pod (e.g. a cloud's scheduling hints).",
    )
    admission: PoolAdmission | None = Field(
        default=None,
        description="Who decides when the pool's Evaluations start: Assay's quota queue (the default) or "
        "Kueue (queue: Kueue, localQueueName).",
    )
    budgets: list[Budget] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Spend limits per window, in pricing's currency (so they need spec.pricing): an Evaluation "
            "whose estimated maximum does not fit waits in Queued (reason BudgetExhausted)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class BudgetState(StrEnum):
    OK = "Ok"
    WARNING = "Warning"  # spent reached one of warnAt
    EXHAUSTED = "Exhausted"  # spent reached spendLimit


class BudgetStatus(ApiModel):
    """One budget's current window and money, as of the pool's lastUpdated."""

    name: str = Field(description="The budget's name in spec.budgets.", max_length=63)
    since: Timestamp = Field(
        description="When the operator first saw the budget: task time before it is never charged."
    )
    window_start: Timestamp = Field(description="Start of the current window.")
    window_end: Timestamp | None = Field(default=None, description="End of the window; empty = never.")
    currency: str = Field(default="USD", description="The pool's currency.", max_length=3)
    spend_limit: str = Field(description="spendLimit of the budget (decimal string).", max_length=32)
    spent: str = Field(
        description="Task time in the window of the Evaluations in scope, at the pool's prices.",
        max_length=32,
    )
    committed: str = Field(
        description="The most their unfinished ones can still cost: estimatedMax minus what they accrued.",
        max_length=32,
    )
    remaining: str = Field(description="spendLimit minus spent, at least 0.", max_length=32)
    state: BudgetState = Field(default=BudgetState.OK, description="Ok, Warning or Exhausted.")
    warned_at: int | None = Field(
        default=None, ge=1, le=100, description="The highest warnAt percentage reached in this window."
    )
    waiting: int = Field(default=0, ge=0, description="Evaluations waiting for this budget.")


class ResourcePoolStatus(ApiModel):
    """What the operator observed about the pool."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed from."
    )
    capacity: dict[str, str] = Field(
        default_factory=dict, description="Allocatable resources summed over the pool's nodes."
    )
    in_use: dict[str, str] = Field(
        default_factory=dict,
        description="Requests of the pool's running tasks, summed (counts against quota).",
    )
    running_evaluations: int = Field(default=0, ge=0, description="Evaluations running in the pool.")
    queued_evaluations: int = Field(default=0, ge=0, description="Evaluations waiting for quota.")
    nodes: int | None = Field(default=None, ge=0, description="Nodes matching the pool's node selector.")
    last_updated: Timestamp | None = Field(default=None, description="When this status was computed.")
    budgets: list[BudgetStatus] = Field(
        default_factory=list,
        max_length=16,
        description="Each budget's window and money (see spec.budgets).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Conditions (metav1.Condition): Ready, QuotaExceeded, GPUsUnbounded (a warning), "
        "BudgetWarning, BudgetExhausted.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ResourcePool(AssayObject):
    """A set of nodes evaluations run on, with per-task bounds, quota, access and pricing (cluster-scoped)."""

    resource: ClassVar[ResourceKind] = ResourceKind(
        kind=POOL_KIND,
        plural=POOL_PLURAL,
        singular="resourcepool",
        scope="Cluster",
        short_names=("pool", "pools"),
        categories=("assay",),
        printer_columns=(
            PrinterColumn("Running", ".status.runningEvaluations", type="integer", description="Running"),
            PrinterColumn("Queued", ".status.queuedEvaluations", type="integer", description="Waiting"),
            PrinterColumn("Nodes", ".status.nodes", type="integer", description="Matching nodes"),
            PrinterColumn(
                "Budget", ".status.budgets[0].state", priority=1, description="State of the first budget"
            ),
            PrinterColumn(
                "Spent", ".status.budgets[0].spent", priority=1, description="Spent of the first budget"
            ),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
            PrinterColumn("Description", ".spec.description", priority=1, description="What the pool is"),
        ),
    )

    kind: str = Field(default=POOL_KIND, description=POOL_KIND)
    spec: ResourcePoolSpec = Field(
        default_factory=ResourcePoolSpec, description="Nodes, per-task bounds, quota, access and pricing."
    )
    status: ResourcePoolStatus = Field(
        default_factory=ResourcePoolStatus, description="What the operator observed; written by the operator."
    )

    @property
    def uses_kueue(self) -> bool:
        """True when Kueue, not Assay's quota queue, admits the pool's Evaluations."""
        admission = self.spec.admission
        return admission is not None and admission.queue == AdmissionQueue.KUEUE

    def bounds_for(self, resource: str) -> ResourceBounds | None:
        """The pool's bounds for ``resource``, if it lists it."""
        return next((b for b in self.spec.resources if b.name == resource), None)
