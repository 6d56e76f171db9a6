"""crds/ is generated from the models, is structural, and teaches the user."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.api import Evaluation, EvaluationSpec, ResourcePool
from assay.api.crdgen import crd_for, openapi_schema, rendered_files
from assay.api.quantity import QUANTITY_PATTERN

CRDS_DIR = Path(__file__).resolve().parents[2] / "crds"


def test_crds_directory_is_up_to_date() -> None:
    for name, text in rendered_files().items():
        path = CRDS_DIR / name
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert path.read_text() == text, f"{path} is stale: run `make crds` and commit the result"


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, schema) node below ``schema``."""
    nodes = [(path, schema)]
    for name, prop in schema.get("properties", {}).items():
        nodes += walk(prop, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            nodes += walk(schema[key], f"{path}[*]")
    return nodes


@pytest.mark.parametrize("model", [Evaluation, ResourcePool])
def test_schema_is_structural(model: type) -> None:
    for path, node in walk(openapi_schema(model)):
        assert "$ref" not in node and "title" not in node and "$defs" not in node, path
        assert node.get("default", "set") is not None, f"{path} has a null default"
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        elif "anyOf" in node:
            pytest.fail(f"{path} has an anyOf that is not int-or-string")
        elif not node.get("x-kubernetes-preserve-unknown-fields"):
            assert "type" in node, f"{path} has no type"


@pytest.mark.parametrize("model", [Evaluation, ResourcePool])
def test_every_field_has_a_description(model: type) -> None:
    for path, node in walk(openapi_schema(model)):
        if "[*]" in path.rsplit(".", 1)[-1] or path == ".metadata":
            continue  # map values and list items are described by their field
        assert node.get("description"), f"{path} has no description"


@pytest.mark.parametrize("model", [Evaluation, ResourcePool])
def test_every_string_is_bounded(model: type) -> None:
    # Unbounded strings make CEL cost estimates explode and let 1 MiB values through.
    for path, node in walk(openapi_schema(model)["properties"]["spec"]):
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, f"spec{path} has no maxLength"
        if node.get("type") == "array":
            assert "maxItems" in node, f"spec{path} has no maxItems"
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, f"spec{path} has no maxProperties"


def test_evaluation_crd_names_scope_columns() -> None:
    crd = crd_for(Evaluation)
    assert crd["metadata"]["name"] == "evaluations.assay.dev"
    spec = crd["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == ["eval", "evals"]
    assert spec["names"]["categories"] == ["assay"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Pool"] == ".spec.pool"
    assert columns["Phase"] == ".status.phase"
    assert columns["Tasks"] == ".status.progress"
    assert columns["Result"] == ".status.headline"
    assert columns["Age"] == ".metadata.creationTimestamp"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"progress", "headline"} <= status.keys()


def test_pool_crd_is_cluster_scoped() -> None:
    spec = crd_for(ResourcePool)["spec"]
    assert spec["scope"] == "Cluster"
    assert "pool" in spec["names"]["shortNames"]


def test_evaluation_spec_schema_details() -> None:
    spec = openapi_schema(Evaluation)["properties"]["spec"]
    props = spec["properties"]
    assert set(spec["required"]) == {"pool", "model", "handler", "dataset"}
    assert (props["tasks"]["minimum"], props["tasks"]["maximum"], props["tasks"]["default"]) == (1, 1000, 1)
    [handler_rule] = props["handler"]["x-kubernetes-validations"]
    assert handler_rule["rule"] == r"self.matches(r'^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$')"
    assert "module:attribute" in handler_rule["message"]
    assert "pattern" not in props["handler"]  # the CEL rule explains; a bare pattern would not
    quantity = props["resources"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True and quantity["pattern"] == QUANTITY_PATTERN
    assert props["suspend"]["default"] is False
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert len(rules) == 1 and "oldSelf" in rules[0]
    for mutable in ("suspend", "cancel", "autoReleaseSeconds"):
        assert f"self.{mutable}" not in rules[0]
    for immutable in EvaluationSpec.model_fields.values():
        alias = immutable.alias
        assert alias is not None
        if alias not in ("suspend", "cancel", "autoReleaseSeconds"):
            assert f"self.{alias} " in rules[0] or f"self.{alias})" in rules[0], alias
    assert props["cancel"]["x-kubernetes-validations"][0]["rule"] == "self || !oldSelf"


def test_crd_files_parse_as_yaml() -> None:
    for text in rendered_files().values():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
