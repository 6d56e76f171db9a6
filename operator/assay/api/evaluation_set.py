"""The EvaluationSet resource: one Evaluation template, a matrix of values, one child Evaluation per
combination, and the comparison table of their results (datasets x models) in status.

The matrix follows Tekton's ``matrix.params``/``matrix.include`` and GitHub Actions' ``exclude``: the
cartesian product of the axes, minus every combination that matches an ``exclude`` entry, plus each
``include`` entry as one more combination (its unnamed axes taken from the template). Combinations are
counted before ``exclude`` and bounded by :data:`MAX_COMBINATIONS`, like Tekton's default fan-out limit.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from assay.api.common import ApiModel, NamespacedObject, PrinterColumn, ResourceKind
from assay.api.conditions import Condition
from assay.api.evaluation import (
    DatasetRef,
    EvaluationSpec,
    ModelRef,
    RuntimeRef,
)
from assay.api.quantity import Quantity

EVALUATION_SET_KIND = "EvaluationSet"
EVALUATION_SET_PLURAL = "evaluationsets"
MAX_COMBINATIONS = 256
# The axes of a matrix, in the order their values make up a combination's name and the table's columns.
AXES = ("model", "dataset", "runtime", "resources", "batchSize")
IMMUTABLE_SET_MESSAGE = (
    "an EvaluationSet's template, matrix and baseline are immutable once created; create a new "
    "EvaluationSet (only suspend, cancel, parallelism and maxFailed may change)"
)


def _not_empty(axis: str) -> JsonDict:
    return {
        "x-kubernetes-validations": [
            {
                "rule": "size(self) > 0",
                "message": f"matrix.{axis} is empty: give it at least one value, or remove the axis",
            }
        ]
    }


class TemplateSpec(EvaluationSpec):
    """An EvaluationSpec whose model and dataset may come from the matrix instead."""

    model_config = ConfigDict(json_schema_extra=None)

    # type: ignore: required in EvaluationSpec, optional here (the matrix may give them).
    model: ModelRef | None = Field(  # type: ignore[assignment]
        default=None, description="The model, unless the matrix has a model axis."
    )
    dataset: DatasetRef | None = Field(  # type: ignore[assignment]
        default=None, description="The dataset, unless the matrix has a dataset axis."
    )


class TemplateMetadata(ApiModel):
    labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, description="Labels every child Evaluation gets.", max_length=64
    )
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, description="Annotations every child Evaluation gets.", max_length=64
    )


class EvaluationTemplate(ApiModel):
    """What every child Evaluation is made of before the matrix fills in its combination."""

    metadata: TemplateMetadata = Field(
        default_factory=TemplateMetadata, description="Labels and annotations of every child."
    )
    spec: TemplateSpec = Field(description="The Evaluation spec; the matrix's values replace its fields.")


class Combination(ApiModel):
    """One value per axis (any axis may be left out): an include or exclude entry, or a child's values."""

    model: ModelRef | None = Field(default=None, description="The model.")
    dataset: DatasetRef | None = Field(default=None, description="The dataset.")
    runtime: RuntimeRef | None = Field(default=None, description="The runtime image.")
    resources: dict[str, Quantity] | None = Field(
        default=None, max_length=16, description="Per-task resource requests."
    )
    batch_size: int | None = Field(default=None, ge=1, le=1_000_000, description="Records per handler call.")


class Matrix(ApiModel):
    """Named axes whose values replace the template's fields; the combinations are their product."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": " * ".join(f"(has(self.{a}) ? size(self.{a}) : 1)" for a in AXES)
                    + " + (has(self.include) ? size(self.include) : 0) <= "
                    + str(MAX_COMBINATIONS),
                    "message": f"the matrix has more than {MAX_COMBINATIONS} combinations (the product "
                    "of its axes plus include, counted before exclude): split it into several "
                    "EvaluationSets",
                },
            ]
        },
    )

    model: list[ModelRef] | None = Field(
        default=None,
        max_length=MAX_COMBINATIONS,
        description="Models.",
        json_schema_extra=_not_empty("model"),
    )
    dataset: list[DatasetRef] | None = Field(
        default=None,
        max_length=MAX_COMBINATIONS,
        description="Datasets.",
        json_schema_extra=_not_empty("dataset"),
    )
    runtime: list[RuntimeRef] | None = Field(
        default=None,
        max_length=MAX_COMBINATIONS,
        description="Runtime images.",
        json_schema_extra=_not_empty("runtime"),
    )
    resources: list[dict[str, Quantity]] | None = Field(
        default=None,
        max_length=MAX_COMBINATIONS,
        description="Per-task resource requests.",
        json_schema_extra=_not_empty("resources"),
    )
    batch_size: list[Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        default=None,
        max_length=MAX_COMBINATIONS,
        description="Records per handler call.",
        json_schema_extra=_not_empty("batchSize"),
    )
    include: list[Combination] = Field(
        default_factory=list,
        max_length=MAX_COMBINATIONS,
        description="Extra combinations (Tekton's matrix.include); axes they leave out come from the "
        "template.",
    )
    exclude: list[Combination] = Field(
        default_factory=list,
        max_length=MAX_COMBINATIONS,
        description="Combinations to drop (GitHub Actions' exclude): each drops every product combination "
        "whose values equal all the values it names.",
    )


class Objective(ApiModel):
    """Which summary metric decides the best combination."""

    metric: str = Field(description="A summary metric of the evaluate step, e.g. accuracy.", min_length=1)
    goal: str = Field(
        default="maximize",
        description="maximize or minimize.",
        pattern=r"^(maximize|minimize)$",
    )


class EvaluationSetSpec(ApiModel):
    """A matrix of Evaluations made from one template."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.template == oldSelf.template && self.matrix == oldSelf.matrix && "
                    "has(self.baseline) == has(oldSelf.baseline) && "
                    "(!has(self.baseline) || self.baseline == oldSelf.baseline) && "
                    "has(self.objective) == has(oldSelf.objective) && "
                    "(!has(self.objective) || self.objective == oldSelf.objective)",
                    "message": IMMUTABLE_SET_MESSAGE,
                }
            ]
        }
    )

    template: EvaluationTemplate = Field(description="The Evaluation every combination starts from.")
    matrix: Matrix = Field(
        description="The axes (model, dataset, runtime, resources, batchSize), include, exclude."
    )
    parallelism: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COMBINATIONS,
        description="How many child Evaluations may be unfinished at once; empty = all of them.",
    )
    max_failed: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COMBINATIONS,
        description="Create no new child once this many have failed; empty = run every combination.",
    )
    baseline: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(
        default=None,
        max_length=len(AXES),
        description="The reference combination, as axis: value key (e.g. model: svc@v1, the key the table "
        "shows); the axes it leaves out match each row, so deltas compare models within each dataset.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(axis, axis in " + str(list(AXES)).replace('"', "'") + ")",
                    "message": "baseline names an unknown axis: use model, dataset, runtime, resources "
                    "or batchSize",
                }
            ]
        },
    )
    objective: Objective | None = Field(default=None, description="The metric and goal that pick the best.")
    suspend: bool = Field(default=False, description="true suspends every child and creates no new one.")
    cancel: bool = Field(
        default=False,
        description="true cancels every child for good and creates no new one. Cannot be undone.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self || !oldSelf", "message": "cancel cannot be undone; create a new EvaluationSet"}
            ]
        },
    )


class SetCounts(ApiModel):
    """Children by phase."""

    combinations: int = Field(default=0, ge=0, description="Combinations of the matrix.")
    created: int = Field(default=0, ge=0, description="Children created so far.")
    pending: int = Field(default=0, ge=0, description="Children Pending or Queued.")
    running: int = Field(default=0, ge=0, description="Children Running.")
    suspended: int = Field(default=0, ge=0, description="Children Suspended.")
    succeeded: int = Field(default=0, ge=0, description="Children Succeeded.")
    failed: int = Field(default=0, ge=0, description="Children Failed or Expired.")
    cancelled: int = Field(default=0, ge=0, description="Children Cancelled.")


class SetCost(ApiModel):
    currency: str = Field(default="USD", description="ISO 4217 currency code.", max_length=3)
    accrued: str = Field(default="0", description="Accrued cost of every child, summed.", max_length=32)
    estimated_max: str = Field(
        default="0", description="estimatedMax of every child created so far, summed.", max_length=32
    )
    shown: str | None = Field(default=None, description="accrued with its currency (kubectl's column).")


class Best(ApiModel):
    evaluation: str = Field(description="The child Evaluation.")
    combination: str = Field(description="Its combination, as the table names it.", max_length=1024)
    metric: str = Field(description="The objective's metric.")
    value: float = Field(description="Its value.")
    shown: str | None = Field(default=None, description="metric=value combination (kubectl's column).")


class TableCell(ApiModel):
    column: str = Field(description="The column (model and the other axes' values).", max_length=1024)
    evaluation: str = Field(description="The child Evaluation.", max_length=253)
    phase: str | None = Field(default=None, description="The child's phase; empty before it is created.")
    value: float | None = Field(default=None, description="The table's metric in the child's summary.")
    delta: float | None = Field(default=None, description="value minus the baseline's value in this row.")
    baseline: bool = Field(default=False, description="true for the baseline's own cell.")


class TableRow(ApiModel):
    dataset: str = Field(description="The dataset (name@version).", max_length=1024)
    cells: list[TableCell] = Field(default_factory=list, description="One cell per column.", max_length=256)


class ComparisonTable(ApiModel):
    """Datasets x models (OpenCompass's layout): one summary metric per cell; at most 256 cells."""

    metric: str | None = Field(default=None, description="The metric shown: the objective's, else the first.")
    columns: list[str] = Field(default_factory=list, description="Column titles.", max_length=256)
    rows: list[TableRow] = Field(default_factory=list, description="One row per dataset.", max_length=256)


class EvaluationSetStatus(ApiModel):
    """What the operator observed of the children; written by the operator only."""

    phase: str | None = Field(
        default=None, description="Pending, Running, Succeeded, Failed, Suspended or Cancelled."
    )
    observed_generation: int | None = Field(default=None, ge=0, description="metadata.generation seen.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Accepted, Running, Succeeded, Failed, Suspended, Cancelled.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    counts: SetCounts | None = Field(default=None, description="Children by phase.")
    progress: str | None = Field(default=None, description="Children succeeded / combinations.")
    cost: SetCost | None = Field(default=None, description="The children's cost, summed.")
    best: Best | None = Field(default=None, description="The best succeeded child by the objective.")
    table: ComparisonTable | None = Field(default=None, description="The comparison table.")
    message: str | None = Field(default=None, description="Human-readable summary.", max_length=32768)


class EvaluationSet(NamespacedObject):
    """A matrix of Evaluations (models x datasets x ...) with their comparison table."""

    resource: ClassVar[ResourceKind] = ResourceKind(
        kind=EVALUATION_SET_KIND,
        plural=EVALUATION_SET_PLURAL,
        singular="evaluationset",
        scope="Namespaced",
        short_names=("evalset", "evalsets"),
        categories=("assay",),
        printer_columns=(
            PrinterColumn("Phase", ".status.phase", description="Where the set is"),
            PrinterColumn("Progress", ".status.progress", description="Children succeeded / combinations"),
            PrinterColumn("Best", ".status.best.shown", description="Best child by the objective"),
            PrinterColumn("Cost", ".status.cost.shown", description="Accrued cost of the children"),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
    )

    kind: str = Field(default=EVALUATION_SET_KIND, description=EVALUATION_SET_KIND)
    spec: EvaluationSetSpec = Field(description="The template, the matrix and how to run it.")
    status: EvaluationSetStatus = Field(
        default_factory=EvaluationSetStatus, description="What the operator observed."
    )
