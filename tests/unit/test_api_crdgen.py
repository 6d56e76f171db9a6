"""crds/ is generated from the models, is structural, and teaches the user."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.api import Evaluation, ResourcePool
from assay.api.crdgen import crd_for, openapi_schema, rendered_files

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
    assert props["suspend"]["default"] is False
    assert props["cancel"]["x-kubernetes-validations"][0]["rule"] == "self || !oldSelf"


def re2_matches(pattern: str, value: str) -> bool:
    """The apiserver's RE2 search (CEL matches(), OpenAPI pattern): its `$` is the end of the text, where
    Python's also matches before a final newline."""
    return re.search(pattern.replace("$", r"\Z"), value) is not None


# Handlers are `module:attribute`, both dotted Python names (README, "Writing a handler").
GOOD_HANDLERS = ["mnist_eval:Evaluator", "pkg.sub.mod:make_handler", "_private:_Cls.attr", "m2:C3"]
BAD_HANDLERS = ["mnist_eval", ":Evaluator", "mod:", "2mod:C", "mod:2C", "../x:C", "mod:C;rm -rf /",
                "mod:C\n", "mod:C d", "a/b:C", "mod::C", "mod:C:D"]  # fmt: skip


def test_the_handler_rule_accepts_module_attribute_only() -> None:
    handler = openapi_schema(Evaluation)["properties"]["spec"]["properties"]["handler"]
    assert "pattern" not in handler  # the CEL rule explains; a bare pattern would not
    [rule] = handler["x-kubernetes-validations"]
    assert "module:attribute" in rule["message"]
    regex = re.fullmatch(r"self\.matches\(r'(.*)'\)", rule["rule"])
    assert regex is not None, rule["rule"]
    for good in GOOD_HANDLERS:
        assert re2_matches(regex[1], good), good
    for bad in BAD_HANDLERS:
        assert not re2_matches(regex[1], bad), bad


# Kubernetes resource quantities (k8s.io/apimachinery resource.Quantity): a decimal number, then a binary
# (Ki..Ei) or decimal (n u m k M G T P E) suffix or an exponent.
GOOD_QUANTITIES = ["1", "0", "500m", "0.5", ".5", "8Gi", "16Mi", "1Ki", "2k", "3M", "1e3", "1E-2", "+1"]
BAD_QUANTITIES = ["", "abc", "8GB", "1 Gi", "8gi", "1.2.3", "Gi", "1Gi1", "1e", "--1", "0x10", "1\n"]


def test_resource_values_follow_kubernetes_quantity_syntax() -> None:
    quantity = openapi_schema(Evaluation)["properties"]["spec"]["properties"]["resources"][
        "additionalProperties"
    ]
    assert quantity["x-kubernetes-int-or-string"] is True
    for good in GOOD_QUANTITIES:
        assert re2_matches(quantity["pattern"], good), good
    for bad in BAD_QUANTITIES:
        assert not re2_matches(quantity["pattern"], bad), bad


# Spec fields a user may change after creation (README: "only suspend, cancel and autoReleaseSeconds may
# change"); every other field must be classified here, so a new one needs a decision.
MUTABLE = {"suspend", "cancel", "autoReleaseSeconds"}
IMMUTABLE = {"pool", "model", "handler", "dataset", "runtime", "tasks", "resources", "output", "debug",
             "backoffLimitPerTask", "batchSize"}  # fmt: skip


def test_only_suspend_cancel_and_auto_release_may_change() -> None:
    spec = openapi_schema(Evaluation)["properties"]["spec"]
    assert set(spec["properties"]) == MUTABLE | IMMUTABLE
    [rule] = [r["rule"] for r in spec["x-kubernetes-validations"]]
    compared = set(re.findall(r"\bself\.(\w+) == oldSelf\.(\1)\b", rule))
    assert {field for field, _ in compared} == IMMUTABLE


def test_crd_files_parse_as_yaml() -> None:
    for text in rendered_files().values():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
