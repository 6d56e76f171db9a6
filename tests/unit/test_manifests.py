"""The install manifests, read as data: the pieces fit together and the operator's pod meets `restricted`.

Rendering with kustomize and the server's verdict are in tests/integration/test_install.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.controller.leadership import DEFAULT_PEERING_NAME

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    for path in sorted(BASE.glob("*.yaml")):
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in {BASE}")


@pytest.fixture(scope="module")
def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = find("Deployment", "assay-operator")["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec["containers"]
    return dict(only)


def test_crds_kustomization_lists_every_generated_crd() -> None:
    from assay.api.crdgen import rendered_files

    listed = yaml.safe_load((ROOT / "crds" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(rendered_files())


def test_base_lists_every_manifest_file() -> None:
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert files <= listed


def test_two_replicas_with_leader_election() -> None:
    deployment = find("Deployment", "assay-operator")
    assert deployment["spec"]["replicas"] == 2
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASSAY_OPERATOR_PEERING_NAME"] == DEFAULT_PEERING_NAME
    find("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev")


def test_pod_meets_the_restricted_pod_security_standard(
    pod_spec: dict[str, Any], container: dict[str, Any]
) -> None:
    pod_sc, sc = pod_spec["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert pod_sc["seccompProfile"]["type"] in {"RuntimeDefault", "Localhost"}
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert sc["readOnlyRootFilesystem"] is True
    assert not pod_spec.get("hostNetwork") and not pod_spec.get("hostPID")
    assert all("hostPath" not in volume for volume in pod_spec.get("volumes", []))


def test_probes_resources_and_image_entrypoint(container: dict[str, Any]) -> None:
    ports = {port["name"] for port in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    # Liveness must not fail during an API outage (a restart cannot help); readiness says so.
    assert (
        container["livenessProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
    ) == (
        "/healthz",
        "/readyz",
    )
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "command" not in container, "the image's entrypoint (assay-operator) must run"


def test_services_target_ports_the_container_has(container: dict[str, Any]) -> None:
    ports = {port["name"] for port in container["ports"]}
    for name in ("assay-webhook", "assay-metrics"):
        for port in find("Service", name)["spec"]["ports"]:
            assert port["targetPort"] in ports, (name, port)


def test_the_network_policy_selects_the_operator_pods() -> None:
    policy = find("NetworkPolicy", "assay-operator")
    template = find("Deployment", "assay-operator")["spec"]["template"]
    assert policy["metadata"]["namespace"] == find("Deployment", "assay-operator")["metadata"]["namespace"]
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected and selected.items() <= template["metadata"]["labels"].items()
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"], "both directions closed by default"


def test_the_network_policy_opens_exactly_the_ports_the_services_reach(container: dict[str, Any]) -> None:
    """Ingress: the container's declared ports that a Service targets (webhook, metrics), none other; the
    probes' port stays closed (the kubelet probes from the node, which a NetworkPolicy always admits)."""
    ingress = find("NetworkPolicy", "assay-operator")["spec"]["ingress"]
    assert all("from" not in rule for rule in ingress), "the apiserver's address is the cluster's own"
    opened = {(port["port"], port["protocol"]) for rule in ingress for port in rule["ports"]}
    declared = {(port["name"], port["protocol"]) for port in container["ports"]}
    targeted = {
        (port["targetPort"], port["protocol"])
        for name in ("assay-webhook", "assay-metrics")
        for port in find("Service", name)["spec"]["ports"]
    }
    probed = {container[probe]["httpGet"]["port"] for probe in ("livenessProbe", "readinessProbe")}
    assert opened == targeted and opened <= declared
    assert {name for name, _ in declared - opened} == probed


def test_the_network_policy_lets_out_only_the_api_and_dns() -> None:
    egress = find("NetworkPolicy", "assay-operator")["spec"]["egress"]
    assert all("to" not in rule for rule in egress), "by port: the apiserver's address is the cluster's own"
    ports = {(port["port"], port["protocol"]) for rule in egress for port in rule["ports"]}
    assert ports == {(443, "TCP"), (6443, "TCP"), (53, "UDP"), (53, "TCP")}


def test_webhook_configuration_points_at_the_webhook_service(container: dict[str, Any]) -> None:
    configuration = find("ValidatingWebhookConfiguration", "assay-validating-webhook")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ASSAY_OPERATOR_WEBHOOK_CONFIGURATION"] == "assay-validating-webhook"
    for webhook in configuration["webhooks"]:
        service = webhook["clientConfig"]["service"]
        assert service["name"] == env["ASSAY_OPERATOR_WEBHOOK_SERVICE"] == "assay-webhook"
        assert "caBundle" not in webhook["clientConfig"], "the operator or cert-manager owns caBundle"


def test_the_webhook_fails_closed_and_skips_what_it_does_not_check() -> None:
    """Fail: nothing the webhook did not see is admitted; suspend and cancel do not need it (the condition
    is the one --webhook local registers; tests/integration/test_install.py shows what it lets through)."""
    from assay.controller.admission.webhooks import WEBHOOK_MATCH_CONDITIONS

    evaluations, sets = find("ValidatingWebhookConfiguration", "assay-validating-webhook")["webhooks"]
    assert evaluations["failurePolicy"] == sets["failurePolicy"] == "Fail"
    assert evaluations["matchConditions"] == WEBHOOK_MATCH_CONDITIONS
    assert sets["rules"][0]["operations"] == ["CREATE"]  # nothing else to check: the rest is immutable


def test_the_operator_may_patch_only_its_own_webhook_configuration() -> None:
    rules = find("ClusterRole", "assay-operator")["rules"]
    (rule,) = [r for r in rules if "validatingwebhookconfigurations" in r["resources"]]
    assert rule["resourceNames"] == ["assay-validating-webhook"]


def test_secrets_are_never_listed_or_watched() -> None:
    for kind, name in (("ClusterRole", "assay-operator"), ("Role", "assay-operator")):
        for rule in find(kind, name)["rules"]:
            if "secrets" in rule["resources"]:
                assert not {"list", "watch", "*"} & set(rule["verbs"]), (kind, rule)


def test_no_wildcards_in_the_operators_roles() -> None:
    for kind in ("ClusterRole", "Role"):
        for rule in find(kind, "assay-operator")["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], (kind, rule)


def test_webhook_path_is_the_kopf_handler_id() -> None:
    """kopf serves a validating handler at /<handler id>; a mismatch would reject every Evaluation."""
    from assay.controller.admission.webhooks import SET_WEBHOOK_ID, WEBHOOK_ID

    evaluations, sets = find("ValidatingWebhookConfiguration", "assay-validating-webhook")["webhooks"]
    assert evaluations["clientConfig"]["service"]["path"] == f"/{WEBHOOK_ID}"
    assert evaluations["rules"][0]["resources"] == ["evaluations"]
    assert sets["clientConfig"]["service"]["path"] == f"/{SET_WEBHOOK_ID}"
    assert sets["rules"][0]["resources"] == ["evaluationsets"]


def test_the_readme_documents_exactly_the_operators_permissions() -> None:
    """The README's permission table and manifests/base/rbac.yaml name the same (resource, verb) pairs."""
    import re

    rules = find("ClusterRole", "assay-operator")["rules"] + find("Role", "assay-operator")["rules"]
    granted = {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}
    resources = {resource for resource, _ in granted}

    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Permissions", 1)[1].split("\n### ", 1)[0]
    documented = set()
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith(("`", "in ")):
            continue
        named = [token for token in re.findall(r"`([^`]+)`", cells[0]) if token in resources]
        verbs = [verb.strip() for verb in cells[1].split(",")]
        documented |= {(resource, verb) for resource in named for verb in verbs}
    assert documented == granted, (
        f"in rbac.yaml only: {sorted(granted - documented)}; "
        f"in the README only: {sorted(documented - granted)}"
    )
