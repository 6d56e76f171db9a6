"""Building blocks shared by both resources: the base model, object metadata and Kubernetes shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A resource name such as cpu, memory or nvidia.com/gpu.
RESOURCE_NAME_PATTERN = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


GROUP = "assay.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Base of every API model: snake_case in Python, camelCase on the wire, unknown fields ignored.

    ``model_validate`` accepts raw API objects; ``model_dump(by_alias=True, exclude_none=True, mode="json")``
    (or :meth:`to_api`) gives API JSON back.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        defer_build=True,
        validate_by_alias=True,
        extra="ignore",
    )

    def to_api(self) -> dict[str, Any]:
        """This object as API JSON (camelCase keys, no nulls)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, the way Kubernetes writes times: ``2026-01-02T03:04:05Z``."""
    return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""A point in time; parsed from RFC 3339, always UTC, written back as ``YYYY-MM-DDTHH:MM:SSZ``."""


class ObjectMeta(ApiModel):
    """The parts of metav1.ObjectMeta Assay reads; everything else is kept as it came."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class AssayObject(ApiModel):
    """What every Assay resource has besides its spec and status: apiVersion, kind and metadata.

    Each resource sets ``kind``'s default (its own kind) and adds ``spec`` and ``status``."""

    api_version: str = Field(default=API_VERSION, description=API_VERSION)
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")

    @property
    def name(self) -> str:
        return self.metadata.name or ""


class NamespacedObject(AssayObject):
    """An Assay resource that lives in a namespace."""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""


class SecretKeySelector(ApiModel):
    """A key of a Secret in the Evaluation's own namespace."""

    name: str = Field(
        description="Name of the Secret, in the same namespace as the Evaluation.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )
    key: str = Field(
        default="password",
        description="Key inside the Secret that holds the value.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """A Kubernetes toleration (core/v1 Toleration), copied onto every task pod of the pool."""

    key: str | None = Field(
        default=None,
        description="Taint key the toleration applies to; empty with operator Exists matches every taint.",
        max_length=316,
    )
    operator: TolerationOperator = Field(
        default=TolerationOperator.EQUAL,
        description="Exists (any value) or Equal (the value below).",
    )
    value: str | None = Field(default=None, description="Taint value to match with Equal.", max_length=63)
    effect: TaintEffect | None = Field(
        default=None, description="Taint effect to match; empty matches every effect."
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="With NoExecute: how long the pod stays bound after the taint appears; empty = forever.",
    )


class LabelSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    """One requirement of a label selector."""

    key: str = Field(description="Label key the requirement applies to.", min_length=1, max_length=316)
    operator: LabelSelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[Annotated[str, Field(max_length=63)]] = Field(
        default_factory=list,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
        max_length=64,
    )

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        match self.operator:
            case LabelSelectorOperator.IN:
                return present and labels[self.key] in self.values
            case LabelSelectorOperator.NOT_IN:
                return not present or labels[self.key] not in self.values
            case LabelSelectorOperator.EXISTS:
                return present
            case LabelSelectorOperator.DOES_NOT_EXIST:
                return not present


class LabelSelector(ApiModel):
    """A Kubernetes label selector (metav1.LabelSelector); all requirements must hold."""

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict,
        description="Labels that must be present with exactly these values.",
        max_length=64,
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        description="Further requirements, all of which must hold.",
        max_length=64,
    )

    def matches(self, labels: dict[str, str]) -> bool:
        """True when ``labels`` satisfy the selector (an empty selector matches everything)."""
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.match_expressions
        )


# --- what crdgen needs beyond the schema ----------------------------------------------------------------


@dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get``."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0  # 1 = only with -o wide

    def to_api(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class ResourceKind:
    """Naming, scope and presentation of a custom resource; crdgen turns it plus the model into a CRD."""

    kind: str
    plural: str
    singular: str
    scope: str  # "Namespaced" or "Cluster"
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)


def immutable_except(*mutable: str, message: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` hook adding a CEL rule: every property but ``mutable`` keeps its value.

    Properties that are required or have a non-null default are always present after defaulting and are
    compared directly; optional ones must also not be added or removed.
    """

    def add_rule(schema: dict[str, Any]) -> None:
        always_present = set(schema.get("required", []))
        clauses = []
        for name, prop in schema["properties"].items():
            if name in mutable:
                continue
            if name in always_present or prop.get("default") is not None:
                clauses.append(f"self.{name} == oldSelf.{name}")
            else:
                same_presence = f"has(self.{name}) == has(oldSelf.{name})"
                clauses.append(f"{same_presence} && (!has(self.{name}) || self.{name} == oldSelf.{name})")
        rule = {"rule": " && ".join(f"({c})" for c in clauses), "message": message}
        schema.setdefault("x-kubernetes-validations", []).append(rule)

    return add_rule


def explained_pattern(pattern: str, message: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` hook: in the CRD, check ``pattern`` with a CEL rule that says ``message``.

    A plain schema ``pattern`` fails with the regular expression as its only explanation; pydantic still
    checks the field's own ``pattern`` in Python.
    """
    if "'" in pattern:
        raise ValueError("the pattern must not contain a single quote (it becomes a CEL raw string)")

    def replace(schema: dict[str, Any]) -> None:
        schema.pop("pattern", None)
        rule = {"rule": f"self.matches(r'{pattern}')", "message": message}
        schema.setdefault("x-kubernetes-validations", []).append(rule)

    return replace
