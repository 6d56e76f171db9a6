"""Helpers of the install tests: the manifests as rendered by kustomize, a service account's credentials,
and `kubectl auth can-i --list` as data. Kept beside the tests that use them (test_install, test_ha,
test_operator_as_service_account)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OPERATOR_NAMESPACE = "assay-system"
OPERATOR_ACCOUNT = "assay-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]
# One permission: (resource as can-i prints it, e.g. "jobs.batch" or "pods/log", resource name or "", verb).
Permission = tuple[str, str, str]


def checked(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def render(kubectl: Kubectl, directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k directory` would apply."""
    return [doc for doc in yaml.safe_load_all(checked(kubectl("kustomize", str(directory)))) if doc]


def service_account_kubeconfig(
    kubectl: Kubectl, admin_kubeconfig: Path, out: Path, namespace: str, account: str
) -> Path:
    """A kubeconfig that authenticates as ``namespace/account`` (a bound token, 1 hour), not as admin."""
    token = checked(kubectl("create", "token", account, "-n", namespace, "--duration=1h")).strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
                "current-context": account,
            }
        )
    )
    out.chmod(0o600)
    return out


def parse_can_i_list(text: str) -> set[Permission]:
    """`kubectl auth can-i --list` as single permissions (non-resource URLs are left out)."""
    permissions: set[Permission] = set()
    for line in text.splitlines()[1:]:
        columns = re.split(r"\s{2,}", line.strip())
        if len(columns) != 4 or columns[0] == "":
            continue
        resource, urls, names, verbs = columns
        if urls != "[]":
            continue
        for verb in verbs.strip("[]").split():
            for name in names.strip("[]").split() or [""]:
                permissions.add((resource, name, verb))
    return permissions


def target(obj: dict[str, Any]) -> list[str]:
    """kubectl arguments naming one object unambiguously: KIND.GROUP/NAME [-n NAMESPACE]."""
    group = obj["apiVersion"].rpartition("/")[0]
    kind = f"{obj['kind']}.{group}" if group else obj["kind"]
    namespace = obj["metadata"].get("namespace")
    return [f"{kind}/{obj['metadata']['name']}", *(["-n", namespace] if namespace else [])]


def wait_until_namespace_is_gone_or_active(kubectl: Kubectl, namespace: str = OPERATOR_NAMESPACE) -> None:
    """An earlier run's clean-up may still be deleting the namespace; nothing can be created in it then."""
    from support import wait_until

    wait_until(
        lambda: "Terminating" not in kubectl("get", "namespace", namespace).stdout,
        timeout=90,
        what=f"namespace {namespace} to finish terminating",
    )


def remove_objects(kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
    """Delete what an install test applied, except the CRDs (other tests use them); never waits."""
    for obj in reversed(objects):
        if obj["kind"] == "CustomResourceDefinition":
            continue
        kubectl("delete", *target(obj), "--ignore-not-found", "--wait=false")


def can_i_list(kubectl: Kubectl, user: str, namespace: str) -> set[Permission]:
    return parse_can_i_list(checked(kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace)))
