"""`kubectl apply -k manifests/` on the real cluster: the server accepts it, the operator's pods meet the
`restricted` Pod Security Standard, the operator's account can do exactly the documented things, and applying
the same manifests again — after the operator wrote what it writes — changes nothing.

The cluster may be shared with other tests, so the applied copy limits the webhook to namespaces labelled
for this module (a webhook whose operator pods are fake would otherwise reject everyone's Evaluations); that
one field is the only difference from manifests/. Everything applied is removed again, except the CRDs.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from install import (
    MANIFESTS,
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    OPERATOR_USER,
    Kubectl,
    Permission,
    can_i_list,
    checked,
    remove_objects,
    render,
    service_account_kubeconfig,
    target,
    wait_until_namespace_is_gone_or_active,
)

from support import wait_until

pytestmark = pytest.mark.timeout(300)

WEBHOOK_CONFIGURATION = "assay-validating-webhook"


@pytest.fixture(scope="module")
def webhook_scope() -> dict[str, str]:
    """The namespace label the installed webhook is limited to (this run's token)."""
    return {"assay.dev/install-test": secrets.token_hex(4)}


@pytest.fixture(scope="module")
def install_overlay(tmp_path_factory: pytest.TempPathFactory, webhook_scope: dict[str, str]) -> Path:
    """manifests/ with the webhook scoped to namespaces labelled with this run's token."""
    directory = tmp_path_factory.mktemp("install")
    ((label, token),) = webhook_scope.items()
    (directory / "kustomization.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
            - {os.path.relpath(MANIFESTS, directory)}
            patches:
            - target: {{kind: ValidatingWebhookConfiguration, name: {WEBHOOK_CONFIGURATION}}}
              patch: |-
                - op: add
                  path: /webhooks/0/namespaceSelector
                  value: {{matchLabels: {{{label}: "{token}"}}}}
            """
        )
    )
    return directory


@pytest.fixture(scope="module")
def installed(kubectl: Kubectl, install_overlay: Path) -> Iterator[list[dict[str, Any]]]:
    """Apply the install for real (once per module); remove all of it but the CRDs afterwards."""
    objects = render(kubectl, install_overlay)
    wait_until_namespace_is_gone_or_active(kubectl)
    checked(kubectl("apply", "-k", str(install_overlay), timeout=120))
    try:
        yield objects
    finally:
        remove_objects(kubectl, objects)


def test_server_side_dry_run_accepts_every_manifest(kubectl: Kubectl) -> None:
    # Namespaced objects can be dry-run only into a namespace that exists.
    wait_until_namespace_is_gone_or_active(kubectl)
    checked(kubectl("apply", "-f", str(MANIFESTS / "base" / "namespace.yaml")))
    result = kubectl("apply", "-k", str(MANIFESTS), "--dry-run=server", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr, result.stderr
    applied = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(applied) == len(render(kubectl, MANIFESTS)), result.stdout


def test_operator_pods_are_admitted_under_the_restricted_standard(
    kubectl: Kubectl, installed: list[dict[str, Any]]
) -> None:
    labels = checked(kubectl("get", "namespace", OPERATOR_NAMESPACE, "-o", "yaml"))
    assert yaml.safe_load(labels)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    def pods() -> list[dict[str, Any]]:
        out = kubectl(
            "get",
            "pods",
            "-n",
            OPERATOR_NAMESPACE,
            "-l",
            "app.kubernetes.io/component=operator",
            "-o",
            "yaml",
        )
        items: list[dict[str, Any]] = yaml.safe_load(out.stdout)["items"] if out.returncode == 0 else []
        return items

    def events() -> str:
        return kubectl(
            "get", "events", "-n", OPERATOR_NAMESPACE, "--field-selector", "reason=FailedCreate"
        ).stdout

    # The ReplicaSet's pods exist only if Pod Security admission let them in (they need not run here).
    wait_until(lambda: len(pods()) == 2, timeout=60, what="2 operator pods admitted", last_seen=events)
    assert "PodSecurity" not in events()


def test_suspend_and_cancel_pass_while_the_webhook_is_down_and_creations_do_not(
    kubectl: Kubectl, installed: list[dict[str, Any]], namespace: str, webhook_scope: dict[str, str]
) -> None:
    """The installed operator's pods never run here, so its webhook (failurePolicy Fail) is down: an
    Evaluation made before the namespace came under it can still be suspended and cancelled, while a new
    one is refused rather than admitted unchecked."""

    def evaluation(name: str) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "assay.dev/v1alpha1",
                "kind": "Evaluation",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "pool": "any",
                    "model": {"name": "m", "uri": "file:///models/m"},
                    "handler": "m:Evaluator",
                    "dataset": {"name": "d", "uri": "file:///data/d"},
                },
            }
        )

    checked(kubectl("create", "-f", "-", input=evaluation("before")))
    ((label, token),) = webhook_scope.items()
    checked(kubectl("label", "namespace", namespace, f"{label}={token}"))
    for change in (
        {"spec": {"suspend": True}},
        {"spec": {"cancel": True}},
        {"metadata": {"labels": {"a": "b"}}},
    ):
        patched = kubectl(
            "patch", "evaluation", "before", "-n", namespace, "--type=merge", "-p", json.dumps(change)
        )
        assert patched.returncode == 0, (change, patched.stderr)
    refused = kubectl("create", "-f", "-", input=evaluation("after"))
    assert refused.returncode != 0 and "failed calling webhook" in refused.stderr, refused.stderr
    changed = kubectl(
        "patch", "evaluation", "before", "-n", namespace, "--type=merge", "-p",
        json.dumps({"spec": {"autoReleaseSeconds": 600}}),
    )  # fmt: skip
    assert changed.returncode != 0 and "failed calling webhook" in changed.stderr, changed.stderr


def _permissions(resources: str, verbs: str, name: str = "") -> set[Permission]:
    return {(resource, name, verb) for resource in resources.split() for verb in verbs.split()}


# The README's table (### Permissions), written out as `can-i --list` prints it: (resource.group, name, verb).
DOCUMENTED_EVERYWHERE = (
    _permissions("evaluations.assay.dev", "list watch create patch")
    | _permissions("resourcepools.assay.dev", "get list watch")
    | _permissions("evaluationsets.assay.dev", "list watch")
    | _permissions(
        "evaluations.assay.dev/status resourcepools.assay.dev/status evaluationsets.assay.dev/status", "patch"
    )
    | _permissions("evaluations.assay.dev/finalizers evaluationsets.assay.dev/finalizers", "update")
    | _permissions("jobs.batch", "list watch create patch delete")
    | _permissions("pods nodes", "list watch")
    | _permissions("services events", "create")
    | _permissions("secrets", "get create")
    | _permissions("namespaces", "get list watch")
    | _permissions("clusterkopfpeerings.kopf.dev", "get list watch create patch")
    | _permissions("customresourcedefinitions.apiextensions.k8s.io", "list watch")
    | _permissions("workloads.kueue.x-k8s.io", "list watch patch")
    | _permissions(
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "get patch",
        "assay-validating-webhook",
    )
)
DOCUMENTED_IN_OPERATOR_NAMESPACE = _permissions("secrets", "get update", "assay-webhook-tls")


def test_the_operator_account_has_exactly_the_documented_permissions(
    kubectl: Kubectl, installed: list[dict[str, Any]], namespace: str
) -> None:
    """can-i --list, minus what any account in the namespace may do, equals the README's table."""
    nobody = f"system:serviceaccount:{OPERATOR_NAMESPACE}:no-permissions-{secrets.token_hex(3)}"

    for where, documented in (
        (namespace, DOCUMENTED_EVERYWHERE),
        (OPERATOR_NAMESPACE, DOCUMENTED_EVERYWHERE | DOCUMENTED_IN_OPERATOR_NAMESPACE),
    ):
        baseline = can_i_list(kubectl, nobody, where)
        granted = can_i_list(kubectl, OPERATOR_USER, where) - baseline
        expected = documented - baseline
        assert granted == expected, (
            f"in {where}: granted but not documented: {sorted(granted - expected)}; "
            f"documented but not granted: {sorted(expected - granted)}"
        )


def test_reapplying_after_the_operator_wrote_its_state_changes_nothing(
    kubectl: Kubectl, kube: Path, installed: list[dict[str, Any]], install_overlay: Path, tmp_path: Path
) -> None:
    """What the operator writes (webhook certificate and caBundle, peering object) is not in the manifests,
    so a GitOps tool and the operator never fight: kubectl diff is empty and a re-apply is all 'unchanged'.
    The operator's own start-up code does the writing, with the operator account's credentials."""
    from kubernetes_asyncio import client, config

    from assay.controller.admission.tls import ensure_serving_secret, inject_ca_bundle, service_dns_names
    from assay.controller.leadership import ensure_peering_object

    account = service_account_kubeconfig(kubectl, kube, tmp_path / "sa", OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)

    async def operator_start_up() -> None:
        api = await config.new_client_from_config(config_file=str(account))
        async with api:
            certificate = await ensure_serving_secret(
                client.CoreV1Api(api),
                namespace=OPERATOR_NAMESPACE,
                name="assay-webhook-tls",
                dns_names=service_dns_names("assay-webhook", OPERATOR_NAMESPACE),
            )
            assert await inject_ca_bundle(
                client.AdmissionregistrationV1Api(api),
                configuration=WEBHOOK_CONFIGURATION,
                ca_pem=certificate.cert_pem,
            )
            await ensure_peering_object(api)

    asyncio.run(operator_start_up())
    webhook = yaml.safe_load(
        checked(kubectl("get", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "-o", "yaml"))
    )
    assert webhook["webhooks"][0]["clientConfig"].get("caBundle")

    diff = kubectl("diff", "-k", str(install_overlay), timeout=120)
    assert diff.returncode == 0, f"kubectl diff found drift:\n{diff.stdout}\n{diff.stderr}"
    # kubectl prints "configured" for a PodDisruptionBudget every time (its selector's patch strategy is
    # "replace", so client-side apply always sends it), although nothing changes: compare what the server
    # stored instead, by resourceVersion.
    before = resource_versions(kubectl, installed)
    checked(kubectl("apply", "-k", str(install_overlay), timeout=120))
    assert resource_versions(kubectl, installed) == before
    webhook = yaml.safe_load(
        checked(kubectl("get", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "-o", "yaml"))
    )
    assert webhook["webhooks"][0]["clientConfig"].get("caBundle"), (
        "a re-apply removed the operator's caBundle"
    )


def resource_versions(kubectl: Kubectl, objects: list[dict[str, Any]]) -> dict[str, str]:
    return {
        " ".join(target(obj)): checked(
            kubectl("get", *target(obj), "-o", "jsonpath={.metadata.resourceVersion}")
        )
        for obj in objects
    }


def test_overlays_render_with_their_components(kubectl: Kubectl) -> None:
    """The optional overlays need CRDs this cluster lacks (cert-manager, Prometheus Operator), so they are
    rendered and checked here rather than applied."""
    cert_manager = render(kubectl, MANIFESTS / "overlays" / "cert-manager")
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in cert_manager}
    assert {
        ("Certificate", "assay-webhook"),
        ("Certificate", "assay-webhook-ca"),
        ("Issuer", "assay-webhook-ca"),
    } <= kinds
    assert ("Role", OPERATOR_ACCOUNT) not in kinds, "cert-manager owns the certificate Secret"
    (role,) = [
        o for o in cert_manager if o["kind"] == "ClusterRole" and o["metadata"]["name"] == OPERATOR_ACCOUNT
    ]
    assert all("validatingwebhookconfigurations" not in rule["resources"] for rule in role["rules"])
    (webhook,) = [o for o in cert_manager if o["kind"] == "ValidatingWebhookConfiguration"]
    assert (
        webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "assay-system/assay-webhook"
    )
    (deployment,) = [o for o in cert_manager if o["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASSAY_OPERATOR_WEBHOOK_TLS"] == "files"

    monitoring = render(kubectl, MANIFESTS / "overlays" / "servicemonitor")
    (monitor,) = [o for o in monitoring if o["kind"] == "ServiceMonitor"]
    (service,) = [
        o for o in monitoring if o["kind"] == "Service" and o["metadata"]["name"] == "assay-metrics"
    ]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_console_overlay_adds_a_read_only_console_the_server_accepts(kubectl: Kubectl) -> None:
    """kubectl kustomize renders the install plus the console; the server (dry run) accepts the console's
    objects, and its account may read evaluations, pools and logs everywhere but change nothing."""
    rendered = render(kubectl, MANIFESTS / "overlays" / "console")
    console = [o for o in rendered if o["metadata"]["name"] == "assay-console"]
    assert sorted(o["kind"] for o in console) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    assert all(o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "assay" for o in console)
    base = {(o["kind"], o["metadata"]["name"]) for o in render(kubectl, MANIFESTS)}
    assert base | {(o["kind"], o["metadata"]["name"]) for o in console} == {
        (o["kind"], o["metadata"]["name"]) for o in rendered
    }
    wait_until_namespace_is_gone_or_active(kubectl)
    checked(kubectl("apply", "-f", str(MANIFESTS / "base" / "namespace.yaml")))
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(console), timeout=60)
    assert result.returncode == 0 and "PodSecurity" not in result.stderr, result.stderr


def test_the_console_account_reads_everywhere_and_changes_nothing(kubectl: Kubectl) -> None:
    rendered = render(kubectl, MANIFESTS / "overlays" / "console")
    rbac = [
        o
        for o in rendered
        if o["metadata"]["name"] == "assay-console" and o["kind"] not in ("Deployment", "Service")
    ]
    wait_until_namespace_is_gone_or_active(kubectl)
    checked(kubectl("apply", "-f", str(MANIFESTS / "base" / "namespace.yaml")))
    checked(kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac)))
    account = "system:serviceaccount:assay-system:assay-console"
    try:

        def can(*what: str) -> bool:
            answer = kubectl("auth", "can-i", "--as", account, *what)
            return answer.stdout.strip() == "yes"

        assert can("list", "evaluations.assay.dev", "--all-namespaces")
        assert can("watch", "resourcepools.assay.dev")
        assert can("get", "pods", "--subresource=log", "-n", "team-x")
        for refused in (
            ("create", "evaluations.assay.dev", "-n", "team-x"),
            ("patch", "evaluations.assay.dev", "-n", "team-x"),
            ("create", "pods", "-n", "team-x"),
            ("get", "secrets", "-n", "team-x"),
            ("create", "pods", "--subresource=exec", "-n", "team-x"),
        ):
            assert not can(*refused), refused
    finally:
        remove_objects(kubectl, rbac)
