"""The Evaluation resource: one model, on one dataset, in one pool — spec and status."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, WithJsonSchema, model_validator

from assay.api.common import (
    DNS_SUBDOMAIN_PATTERN,
    ApiModel,
    NamespacedObject,
    PrinterColumn,
    ResourceKind,
    SecretKeySelector,
    Timestamp,
    explained_pattern,
    immutable_except,
)
from assay.api.conditions import Condition, Phase
from assay.api.indexes import parse_index_ranges
from assay.api.quantity import Quantity
from assay.contract import STEP_ORDER, Step, output_uri

EVALUATION_KIND = "Evaluation"
EVALUATION_PLURAL = "evaluations"

MAX_TASKS = 1000
MIN_AUTO_RELEASE_SECONDS = 60
DEFAULT_AUTO_RELEASE_SECONDS = 3600
HANDLER_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
URI_PATTERN = r"^[a-z][a-z0-9+.-]*://\S+$"
# Longest status.summary shown in kubectl get; the evaluate step's whole summary is in status.results.
HEADLINE_MAX_LENGTH = 64

IMMUTABLE_SPEC_MESSAGE = (
    "the run spec is immutable once created; create a new Evaluation "
    "(only suspend, cancel and autoReleaseSeconds may change)"
)


_URI_PATTERN_RULE = explained_pattern(
    URI_PATTERN, "uri must be a location with a scheme, e.g. pvc://<claim>/<path> or file:///<path>"
)
# A pvc:// location names a claim the tasks mount: it must be a valid claim name (else the Job is refused and
# the Evaluation could never start), and its path must stay inside the claim.
_PVC_URI_RULES = [
    {
        "rule": "!self.startsWith('pvc://') || "
        r"self.matches(r'^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(/|$)')",
        "message": "a pvc:// uri must start with the name of a PersistentVolumeClaim in the Evaluation's "
        "namespace (lowercase letters, digits, '-' and '.'): pvc://<claim>/<path>",
    },
    {
        "rule": r"!self.startsWith('pvc://') || !self.matches(r'/\.\.(/|$)')",
        "message": "a pvc:// uri must stay inside its claim: remove the '..' path segments",
    },
]


def _URI_RULE(schema: dict[str, Any]) -> None:
    _URI_PATTERN_RULE(schema)
    schema.setdefault("x-kubernetes-validations", []).extend(_PVC_URI_RULES)


class ModelRef(ApiModel):
    """The model under evaluation."""

    name: str = Field(description="Name of the model, e.g. mnist-cnn.", min_length=1, max_length=253)
    version: str | None = Field(
        default=None, description="Version of the model, e.g. v3 (shown in reports).", max_length=128
    )
    uri: str = Field(
        description=(
            "Where the model's files are: pvc://<claim>/<path> (mounted read-only into every task), "
            "or file://<path> inside the runtime image."
        ),
        max_length=2048,
        pattern=URI_PATTERN,
        json_schema_extra=_URI_RULE,
    )


class DatasetRef(ApiModel):
    """The dataset the model is evaluated on."""

    name: str = Field(description="Name of the dataset, e.g. mnist-test.", min_length=1, max_length=253)
    version: str | None = Field(
        default=None, description="Version of the dataset, e.g. v1 (shown in reports).", max_length=128
    )
    uri: str = Field(
        description=(
            "Where the dataset is: pvc://<claim>/<path> or file://<path> inside the runtime image; "
            "the predict tasks each read one shard of it."
        ),
        max_length=2048,
        pattern=URI_PATTERN,
        json_schema_extra=_URI_RULE,
    )


class RuntimeRef(ApiModel):
    """The container image the tasks run in (it has the Assay runner and the model's framework)."""

    name: str | None = Field(default=None, description="Name of the runtime, e.g. pytorch.", max_length=253)
    version: str | None = Field(default=None, description="Version of the runtime, e.g. 2.4.", max_length=128)
    image: str | None = Field(
        default=None,
        description=(
            "Container image reference, e.g. registry.example.com/assay-runtime:2.4; empty = the "
            "operator's default runtime image."
        ),
        min_length=1,
        max_length=512,
        pattern=r"^\S+$",
    )


class OutputSpec(ApiModel):
    """Where predictions and detailed per-record results are written (needed when tasks > 1)."""

    pvc: str = Field(
        description="Name of a PersistentVolumeClaim in the Evaluation's namespace, mounted into every task.",
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )
    path: str | None = Field(
        default=None,
        description="Directory inside the claim, relative; empty = <namespace>/<evaluation name>/.",
        max_length=1024,
        pattern=r"^[^/].*$|^$",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": r"!self.matches(r'(^|/)\.\.(/|$)')",
                    "message": "output.path must stay inside the claim: remove the '..' path segments",
                }
            ]
        },
    )


class DebugSpec(ApiModel):
    """Debug mode: a password-protected debug server in the task pods, the final step's kept up after the
    handler ends."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.enabled || !has(self.passwordSecretRef)",
                    "message": "debug.passwordSecretRef is set but debug.enabled is false: "
                    "set debug.enabled: true or remove passwordSecretRef",
                }
            ]
        }
    )

    enabled: bool = Field(
        default=False,
        description=(
            "Run a password-protected debug server in every task pod while it works, keep the final "
            "step's pod (evaluate, or the single all) up after the handler ends (until auto-release), and "
            "serve the debug port through a ClusterIP Service named in status.debug.service."
        ),
    )
    password_secret_ref: SecretKeySelector | None = Field(
        default=None,
        description=(
            "Secret key holding the debug password, in the Evaluation's namespace. Empty with enabled: "
            "the operator generates a password into an owned Secret named in status.debug.passwordSecret."
        ),
    )


class EvaluationSpec(ApiModel):
    """What to evaluate, where, and how."""

    model_config = ConfigDict(
        json_schema_extra=immutable_except(
            "suspend", "cancel", "autoReleaseSeconds", message=IMMUTABLE_SPEC_MESSAGE
        )
    )

    pool: str = Field(
        description=(
            "Name of the ResourcePool the tasks run in (kubectl get resourcepools). It decides the nodes, "
            "resource defaults and bounds, quota and pricing; there is never a fallback to another pool."
        ),
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        json_schema_extra=explained_pattern(
            DNS_SUBDOMAIN_PATTERN,
            "pool must be the name of a ResourcePool (lowercase letters, digits, '-' and '.'); "
            "see kubectl get resourcepools",
        ),
    )
    model: ModelRef = Field(description="The model under evaluation: name, version and where its files are.")
    handler: str = Field(
        description=(
            "The evaluation handler inside the model, as module:attribute (e.g. mnist_eval:MNISTEvaluator); "
            "the runner imports the module from the model's files."
        ),
        max_length=512,
        pattern=HANDLER_PATTERN,
        json_schema_extra=explained_pattern(
            HANDLER_PATTERN,
            "handler must be module:attribute, e.g. mnist_eval:MNISTEvaluator "
            "(a Python module in the model's files, then the class or function in it)",
        ),
    )
    dataset: DatasetRef = Field(description="The dataset: name, version and where it is.")
    runtime: RuntimeRef | None = Field(
        default=None, description="The container image the tasks run in; empty = the operator's default."
    )
    tasks: int = Field(
        default=1,
        ge=1,
        le=MAX_TASKS,
        description=(
            "Number of predict tasks; each takes one shard of the dataset, all run in parallel, and one "
            "evaluate step follows. With 1, a single pod runs both steps."
        ),
    )
    resources: dict[str, Quantity] | None = Field(
        default=None,
        max_length=16,
        description=(
            "Per-task resource requests, e.g. {nvidia.com/gpu: 1, cpu: 4, memory: 16Gi}; resources not "
            "named take the pool's defaults, and each must lie within the pool's [min, max]. "
            "GPU limits equal requests."
        ),
    )
    output: OutputSpec | None = Field(
        default=None,
        description="Where predictions and detailed results are written; needed when tasks > 1.",
    )
    debug: DebugSpec | None = Field(default=None, description="Debug mode; off unless enabled.")
    auto_release_seconds: int | None = Field(
        default=None,
        ge=0,
        le=31_536_000,
        description=(
            "Seconds from the first task's start after which the tasks are stopped and their resources "
            "freed (phase Expired, reason AutoReleased). 0 = never; otherwise at least 60. Empty = the "
            "pool's autoRelease.defaultSeconds, else 3600. May be changed while running."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self == 0 || self >= {MIN_AUTO_RELEASE_SECONDS}",
                    "message": "autoReleaseSeconds must be 0 (never release) or at least 60 seconds",
                }
            ]
        },
    )
    suspend: bool = Field(
        default=False,
        description="true stops the tasks and keeps the record (phase Suspended); false again resumes.",
    )
    cancel: bool = Field(
        default=False,
        description="true stops the tasks for good (phase Cancelled); the record stays. Cannot be undone.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self || !oldSelf",
                    "message": "cancel cannot be undone; create a new Evaluation to run again",
                }
            ]
        },
    )
    backoff_limit_per_task: int = Field(
        default=1,
        ge=0,
        le=10,
        description="How many times a failed task is retried before the Evaluation fails.",
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Records per handler call; empty = the runner's default (64).",
    )


class TaskPhase(StrEnum):
    """Where one task is; its reason field says why (Unschedulable, ImagePullFailed, an exit-code reason)."""

    PENDING = "Pending"  # not yet started: waiting for a node, an image, or its turn
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"  # failed past its retries
    STOPPED = "Stopped"  # stopped by suspend, cancel or auto-release
    SKIPPED = "Skipped"  # never runs: a step it needs failed (the evaluate step after a failed predict task)


class TaskStatus(ApiModel):
    """One task of the Evaluation."""

    step: Step = Field(description="predict (one shard), evaluate (all predictions into metrics), or all.")
    index: int = Field(ge=0, description="Task index within its step (the Indexed Job's completion index).")
    phase: TaskPhase = Field(
        description="Pending, Running, Succeeded, Failed, Stopped, or Skipped (never runs: a predict task "
        "it needs failed)."
    )
    pod: str | None = Field(default=None, description="Name of the task's latest pod.", max_length=253)
    node: str | None = Field(default=None, description="Node the latest pod runs on.", max_length=253)
    attempts: int = Field(
        default=0, ge=0, description="Pods started for this task so far, evicted and preempted ones included."
    )
    start_time: Timestamp | None = Field(default=None, description="When the task's first pod started.")
    completion_time: Timestamp | None = Field(default=None, description="When the task finished.")
    exit_code: int | None = Field(default=None, description="Exit code of the latest finished attempt.")
    reason: str | None = Field(
        default=None,
        description="Why the task is in its phase, e.g. Unschedulable, ImagePullFailed, HandlerFailed.",
        max_length=1024,
    )
    message: str | None = Field(default=None, description="Details for the reason.", max_length=4096)


# Evaluations with more tasks than this list their succeeded predict tasks as index ranges only: a status
# of 1,000 full entries is one large object that every status write sends again.
LISTED_TASKS_LIMIT = 100


class SucceededTasks(ApiModel):
    """Succeeded predict tasks that ``tasks`` does not list one by one (Evaluations of over 100 tasks)."""

    predict: str = Field(
        default="",
        description='Their indexes as ranges, e.g. "0-41,43-99".',
        max_length=8192,
        pattern=r"^[0-9,-]*$",
    )
    task_seconds: float = Field(
        default=0, ge=0, description="Seconds they held their resources, summed (for the accrued cost)."
    )


class TaskCounts(ApiModel):
    """How many tasks are in each phase."""

    total: int = Field(default=0, ge=0, description="All tasks: predict tasks plus the evaluate step.")
    pending: int = Field(default=0, ge=0, description="Tasks not yet running.")
    running: int = Field(default=0, ge=0, description="Tasks running now.")
    succeeded: int = Field(default=0, ge=0, description="Tasks that succeeded.")
    failed: int = Field(default=0, ge=0, description="Tasks that failed past their retries.")
    skipped: int = Field(default=0, ge=0, description="Tasks that never run because a step they need failed.")

    @property
    def progress(self) -> str:
        """``succeeded/total``, as kubectl get shows it."""
        return f"{self.succeeded}/{self.total}"


class Cost(ApiModel):
    """Cost from the pool's pricing; absent when the pool has none."""

    currency: str = Field(
        default="USD", description="ISO 4217 currency code.", pattern=r"^[A-Z]{3}$", max_length=3
    )
    estimated_max: str | None = Field(
        default=None,
        description="Cost if every task runs until auto-release, fixed at acceptance (decimal string).",
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        max_length=32,
    )
    accrued: str | None = Field(
        default=None,
        description="Cost of the task time used so far (decimal string).",
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        max_length=32,
    )
    shown: str | None = Field(
        default=None,
        description="The accrued cost with its currency, e.g. '1.50 USD' (derived; kubectl's column).",
        max_length=40,
    )

    @model_validator(mode="after")
    def _derive_shown(self) -> Cost:
        # kubectl printer columns can only show single fields, so this one is derived, never set by hand.
        self.shown = f"{self.accrued} {self.currency}" if self.accrued is not None else None
        return self


SummaryValue = float | int | str | bool | None

Summary = Annotated[
    dict[str, SummaryValue],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True, "maxProperties": 256}),
]


class Results(ApiModel):
    """What the evaluate step reported."""

    summary: Summary = Field(
        default_factory=dict,
        description="Summary metrics from the evaluate step, flat keys (a/b for nesting), e.g. accuracy.",
    )
    records: int | None = Field(default=None, ge=0, description="Number of records evaluated.")
    location: str | None = Field(
        default=None, description="Where the detailed per-record results are.", max_length=2048
    )


class DebugStatus(ApiModel):
    """How to reach the debug server (never the password itself)."""

    service: str | None = Field(default=None, description="ClusterIP Service in front of the debug port.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Port of the debug server.")
    password_secret: str | None = Field(
        default=None, description="Secret (same namespace) holding the debug password under key 'password'."
    )


def headline_of(summary: dict[str, SummaryValue]) -> str | None:
    """The first summary metric as ``key=value`` (floats to 4 significant digits), for kubectl get."""
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"{key}={shown}"[:HEADLINE_MAX_LENGTH]
    return None


class EvaluationStatus(ApiModel):
    """What the operator observed; written by the operator only."""

    phase: Phase | None = Field(
        default=None,
        description="Pending, Queued, Running, Succeeded, Failed, Suspended, Cancelled or Expired.",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Conditions (metav1.Condition): Accepted, Queued, Scheduled, Running, Succeeded, Failed, "
            "Suspended, Cancelled, Expired, ResultsUnreadable."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    start_time: Timestamp | None = Field(default=None, description="When the first task started.")
    completion_time: Timestamp | None = Field(
        default=None, description="When the Evaluation reached a terminal phase."
    )
    expires_at: Timestamp | None = Field(
        default=None, description="startTime + autoReleaseSeconds: when the tasks will be stopped."
    )
    tasks: list[TaskStatus] = Field(
        default_factory=list,
        max_length=MAX_TASKS + 1,
        description=(
            "One entry per task: step, index, phase, pod, node, attempts, exit code and reason. An "
            f"Evaluation of more than {LISTED_TASKS_LIMIT} tasks lists only the predict tasks that have not "
            "succeeded (and the evaluate step): the succeeded ones are in succeededTasks, and taskCounts "
            "counts them all."
        ),
    )
    succeeded_tasks: SucceededTasks | None = Field(
        default=None,
        description=(
            f"Succeeded predict tasks not listed in tasks (Evaluations of over {LISTED_TASKS_LIMIT} tasks)."
        ),
    )
    task_counts: TaskCounts | None = Field(default=None, description="How many tasks are in each phase.")
    progress: str | None = Field(
        default=None,
        description="Tasks succeeded out of the total, e.g. 3/5 (filled from taskCounts).",
        max_length=32,
    )
    headline: str | None = Field(
        default=None,
        description="The first summary metric as key=value (filled from results.summary).",
        max_length=HEADLINE_MAX_LENGTH,
    )
    cost: Cost | None = Field(default=None, description="Estimated and accrued cost from the pool's pricing.")
    results: Results | None = Field(
        default=None, description="Summary metrics and where detailed results are."
    )
    debug: DebugStatus | None = Field(default=None, description="How to reach the debug server.")
    queue_position: int | None = Field(
        default=None, ge=1, description="Position in the pool's queue while Queued (1 = next)."
    )
    message: str | None = Field(
        default=None, description="Human-readable summary of the current phase.", max_length=32768
    )

    def every_task(self) -> list[TaskStatus]:
        """Every task: the listed entries and, for the succeeded tasks listed only as indexes, an entry that
        says Succeeded (their details are gone), in step and index order."""
        if self.succeeded_tasks is None:
            return list(self.tasks)
        unlisted = [
            TaskStatus(step=Step.PREDICT, index=index, phase=TaskPhase.SUCCEEDED)
            for index in parse_index_ranges(self.succeeded_tasks.predict)
        ]
        return sorted([*self.tasks, *unlisted], key=lambda t: (STEP_ORDER[t.step], t.index))

    @model_validator(mode="after")
    def _derive_display_fields(self) -> EvaluationStatus:
        # kubectl printer columns can only show single fields, so these are derived, never set by hand.
        if self.task_counts is not None:
            self.progress = self.task_counts.progress
        if self.results is not None:
            self.headline = headline_of(self.results.summary)
        return self


class Evaluation(NamespacedObject):
    """An evaluation of a model on a dataset, run as Kubernetes Jobs in a ResourcePool."""

    resource: ClassVar[ResourceKind] = ResourceKind(
        kind=EVALUATION_KIND,
        plural=EVALUATION_PLURAL,
        singular="evaluation",
        scope="Namespaced",
        short_names=("eval", "evals"),
        categories=("assay",),
        printer_columns=(
            PrinterColumn("Pool", ".spec.pool", description="ResourcePool the tasks run in"),
            PrinterColumn("Phase", ".status.phase", description="Where the evaluation is"),
            PrinterColumn("Tasks", ".status.progress", description="Tasks succeeded / total"),
            PrinterColumn("Result", ".status.headline", description="First summary metric"),
            PrinterColumn("Cost", ".status.cost.shown", description="Cost so far, with its currency"),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
            PrinterColumn("Model", ".spec.model.name", priority=1, description="Model under evaluation"),
            PrinterColumn("Dataset", ".spec.dataset.name", priority=1, description="Dataset"),
            # A string, not a date: kubectl prints a date column as an age, and "<invalid>" for the future.
            PrinterColumn("Expires", ".status.expiresAt", priority=1, description="Auto-release time (UTC)"),
        ),
    )

    kind: str = Field(default=EVALUATION_KIND, description=EVALUATION_KIND)
    spec: EvaluationSpec = Field(description="What to evaluate, where, and how.")
    status: EvaluationStatus = Field(
        default_factory=EvaluationStatus, description="What the operator observed; written by the operator."
    )

    @property
    def output_uri(self) -> str | None:
        """Where the tasks write and the results are read (see :func:`assay.contract.output_uri`)."""
        output = self.spec.output
        return output_uri(output.pvc, output.path, self.namespace, self.name) if output is not None else None
