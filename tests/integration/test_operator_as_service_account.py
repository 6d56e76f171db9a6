"""End to end with the operator's own credentials: the RBAC of manifests/ is enough for a whole evaluation
(never a 403), the metrics endpoint, scraped along the way, moves with it, and the pool and Evaluation
applied from files show no drift afterwards (kubectl diff), as a GitOps tool would see them.

The operator runs as a process on this machine with a token of the `assay-operator` service account, as in
its pod; peering is on, as deployed. Fake pods on KWOK nodes stand in for the runner.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from install import (
    MANIFESTS,
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Kubectl,
    checked,
    remove_objects,
    render,
    service_account_kubeconfig,
    wait_until_namespace_is_gone_or_active,
)
from kubernetes import client
from operators import OperatorProcess

from assay.api import EVALUATION_PLURAL, GROUP, VERSION
from assay.contract import result_message
from support import FakePods, wait_until

pytestmark = [pytest.mark.kwok, pytest.mark.timeout(300)]

RBAC_KINDS = {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
RBAC_KINDS |= {"Role", "RoleBinding"}


@pytest.fixture(scope="module")
def operator_account(
    kubectl: Kubectl, kube: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The namespace, CRDs and RBAC of manifests/ applied (no Deployment, no webhook); a kubeconfig with
    the operator account's token."""
    objects = [obj for obj in render(kubectl, MANIFESTS) if obj["kind"] in RBAC_KINDS]
    wait_until_namespace_is_gone_or_active(kubectl)
    checked(kubectl("apply", "-f", "-", input="---\n".join(yaml.safe_dump(o) for o in objects)))
    checked(
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev")
    )
    directory = tmp_path_factory.mktemp("account")
    try:
        yield service_account_kubeconfig(
            kubectl, kube, directory / "kubeconfig", OPERATOR_NAMESPACE, OPERATOR_ACCOUNT
        )
    finally:
        remove_objects(kubectl, objects)


@pytest.fixture
def priced_pool(kubectl: Kubectl, kwok_nodes: list[str], tmp_path: Path) -> Iterator[Path]:
    """A pool of the fake A100 nodes with GPU pricing, applied as a GitOps tool would: from a file."""
    manifest = tmp_path / "pool.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ResourcePool",
                "metadata": {"name": f"sa-{secrets.token_hex(3)}"},
                "spec": {
                    "nodeSelector": {"assay.dev/pool-node": "a100"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "resources": [
                        {"name": "nvidia.com/gpu", "default": "1", "max": "8"},
                        {"name": "cpu", "default": "1", "max": "8"},
                        {"name": "memory", "default": "1Gi", "max": "64Gi"},
                    ],
                    "quota": {"nvidia.com/gpu": "8"},
                    "pricing": {"currency": "USD", "perHour": {"nvidia.com/gpu": "3600"}},
                },
            }
        )
    )
    checked(kubectl("apply", "-f", str(manifest)))
    yield manifest
    kubectl("delete", "-f", str(manifest), "--ignore-not-found", "--wait=false")


@pytest.fixture
def peering_name(custom_objects: client.CustomObjectsApi) -> Iterator[str]:
    name = f"assay-sa-{secrets.token_hex(3)}"
    yield name
    try:
        custom_objects.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def test_a_whole_evaluation_with_the_operator_account_and_moving_metrics(
    operator_account: Path,
    namespace: str,
    priced_pool: Path,
    peering_name: str,
    kubectl: Kubectl,
    custom_objects: client.CustomObjectsApi,
    fake_pods: FakePods,
    tmp_path: Path,
) -> None:
    operator = OperatorProcess.start(
        "sa", kubeconfig=operator_account, namespaces=[namespace], log_dir=tmp_path, peering=peering_name
    )
    pool = yaml.safe_load(priced_pool.read_text())["metadata"]["name"]
    name = "e2e"
    selector = f"{GROUP}/evaluation={name}"
    try:
        wait_until(operator.scrape, timeout=30, what="the metrics endpoint", last_seen=operator.log)
        latency_before = operator.total("assay_jobs_created_latency_seconds_count")
        evaluation_manifest = tmp_path / "evaluation.yaml"
        evaluation_manifest.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Evaluation",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "pool": pool,
                        "model": {"name": "m", "version": "v1", "uri": "file:///models/m"},
                        "handler": "m:Model",
                        "dataset": {"name": "d", "uri": "file:///data/d"},
                        "runtime": {"image": "registry.invalid/assay-runner:test"},
                        "tasks": 2,
                    },
                }
            )
        )
        checked(kubectl("apply", "-f", str(evaluation_manifest)))

        def phase() -> str | None:
            body = custom_objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, EVALUATION_PLURAL, name
            )
            return (body.get("status") or {}).get("phase")

        fake_pods.wait_running(namespace, f"{selector},{GROUP}/step=predict", count=2, timeout=90)
        wait_until(lambda: phase() == "Running", timeout=30, what="phase Running", last_seen=operator.log)
        wait_until(
            lambda: operator.total("assay_evaluations", pool=pool, phase="Running") == 1,
            timeout=30,
            what="assay_evaluations{phase=Running} = 1",
        )
        wait_until(
            lambda: operator.total("assay_tasks", pool=pool, phase="running") == 2,
            timeout=30,
            what="assay_tasks{phase=running} = 2",
        )
        assert operator.total("assay_jobs_created_latency_seconds_count") == latency_before + 1

        # Pod times have whole-second resolution: let the tasks hold their GPU for measurable time.
        time.sleep(2)
        fake_pods.finish_all(namespace, f"{selector},{GROUP}/step=predict", "succeed", count=2)
        fake_pods.finish_all(
            namespace,
            f"{selector},{GROUP}/step=evaluate",
            "succeed",
            message=result_message({"accuracy": 0.75}, records=8),
            timeout=90,
        )
        wait_until(lambda: phase() == "Succeeded", timeout=60, what="phase Succeeded", last_seen=operator.log)
        status = custom_objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, name
        )["status"]
        assert status["results"]["summary"] == {"accuracy": 0.75}

        wait_until(
            lambda: operator.total("assay_evaluations", pool=pool, phase="Succeeded") == 1,
            timeout=30,
            what="assay_evaluations{phase=Succeeded} = 1",
        )
        assert operator.total("assay_evaluations", pool=pool, phase="Running") == 0
        assert operator.total("assay_tasks", pool=pool) == 0
        assert operator.total("assay_status_final_latency_seconds_count", pool=pool) == 1
        assert operator.total("assay_gpu_seconds_total", pool=pool, namespace=namespace) > 0, status
        assert operator.total("assay_cost_total", pool=pool, namespace=namespace, currency="USD") > 0
        assert operator.total("assay_reconcile_duration_seconds_count", handler="evaluation") > 0

        # GitOps: the operator wrote status (Evaluation and pool) and nothing a re-apply would undo.
        for manifest in (evaluation_manifest, priced_pool):
            diff = kubectl("diff", "-f", str(manifest))
            assert diff.returncode == 0, f"drift on {manifest.name}:\n{diff.stdout}{diff.stderr}"

        log = operator.log()
        assert "Forbidden" not in log and " 403" not in log, "the operator lacked a permission:\n" + log
    finally:
        operator.stop()
