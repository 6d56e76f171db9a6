"""The create form: its fields as an Evaluation manifest, with errors that name the field to fix (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from assay.api import GROUP, VERSION, Evaluation
from assay.errors import Invalid

FIELDS = (
    "namespace",
    "name",
    "pool",
    "model",
    "model_version",
    "model_uri",
    "handler",
    "dataset",
    "dataset_version",
    "dataset_uri",
    "runtime_image",
    "tasks",
    "resources",
    "auto_release",
    "debug",
)
PASSWORD_FIELD = "debug_password"
# Where a manifest path comes from in the form, so a model error names the form's own label.
LABEL_OF_PATH = {
    ("spec", "pool"): "pool",
    ("spec", "model", "name"): "model name",
    ("spec", "model", "version"): "model version",
    ("spec", "model", "uri"): "model location",
    ("spec", "handler"): "handler",
    ("spec", "dataset", "name"): "dataset name",
    ("spec", "dataset", "version"): "dataset version",
    ("spec", "dataset", "uri"): "dataset location",
    ("spec", "runtime", "image"): "runtime image",
    ("spec", "tasks"): "tasks",
    ("spec", "resources"): "resources",
    ("spec", "autoReleaseSeconds"): "auto-release",
    ("metadata", "name"): "name",
}


@dataclass(frozen=True)
class CreateForm:
    """The form's fields. The debug password is kept apart from ``values``: those are shown again in the
    form after an error, the password never is."""

    values: dict[str, str] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], *, namespace: str) -> CreateForm:
        values = {key: str(fields.get(key, "") or "").strip() for key in FIELDS}
        values["namespace"] = values["namespace"] or namespace
        values["tasks"] = values["tasks"] or "1"
        password = str(fields.get(PASSWORD_FIELD, "") or "")  # as typed: spaces may be part of it
        return cls(values, password or None)

    @property
    def debug(self) -> bool:
        return self.values["debug"] in ("on", "true", "1")

    def manifest(self) -> dict[str, Any]:
        """The Evaluation to create; :class:`Invalid` names the field when one is wrong."""
        v = self.values
        spec: dict[str, Any] = {
            "pool": v["pool"],
            "model": _ref(v["model"], v["model_version"], v["model_uri"]),
            "handler": v["handler"],
            "dataset": _ref(v["dataset"], v["dataset_version"], v["dataset_uri"]),
            "tasks": _whole(v["tasks"], "tasks"),
        }
        if v["runtime_image"]:
            spec["runtime"] = {"image": v["runtime_image"]}
        if v["resources"]:
            spec["resources"] = _resources(v["resources"])
        if v["auto_release"]:
            spec["autoReleaseSeconds"] = _whole(v["auto_release"], "auto-release")
        if self.password is not None and not self.debug:
            raise Invalid("debug password: tick Debug mode to use it, or leave it empty")
        if self.debug:
            spec["debug"] = {"enabled": True}  # with a password, the SDK adds the Secret that holds it
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Evaluation",
            "metadata": {"name": v["name"], "namespace": v["namespace"]},
            "spec": spec,
        }

    def evaluation(self) -> Evaluation:
        """The manifest as the typed model: the same checks the API models make, before the server's."""
        manifest = self.manifest()
        if not self.values["name"]:
            raise Invalid("name: give the evaluation a name")
        try:
            return Evaluation.model_validate(manifest)
        except ValidationError as error:
            raise Invalid("; ".join(_problem(problem) for problem in error.errors())) from None


def _ref(name: str, version: str, uri: str) -> dict[str, str]:
    ref = {"name": name, "uri": uri}
    if version:
        ref["version"] = version
    return ref


def _whole(text: str, label: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise Invalid(f"{label}: {text!r} is not a whole number") from None


def _resources(text: str) -> dict[str, str]:
    """``cpu=2, nvidia.com/gpu=1`` (commas or new lines between) as a mapping."""
    resources: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        name, equals, amount = part.partition("=")
        if not equals or not name.strip() or not amount.strip():
            raise Invalid(f"resources: {part.strip()!r} is not NAME=AMOUNT (e.g. nvidia.com/gpu=1)")
        resources[name.strip()] = amount.strip()
    return resources


def _problem(problem: Mapping[str, Any]) -> str:
    path = tuple(str(p) for p in problem.get("loc", ()))
    label = next(
        (LABEL_OF_PATH[path[:n]] for n in range(len(path), 0, -1) if path[:n] in LABEL_OF_PATH), None
    )
    return f"{label or '.'.join(path)}: {problem.get('msg', 'invalid')}"
