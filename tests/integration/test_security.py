"""Security: the debug password never appears anywhere the operator writes or serves, and the operator's and
the tasks' pods pass the `restricted` Pod Security Standard in a namespace that enforces it.

(The operator's RBAC, least privilege checked with ``kubectl auth can-i --list``, is tested by
test_install.py and test_operator_as_service_account.py.)
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from operators import OperatorProcess
from test_operator import Evaluations, debug_password_volume, make_pool  # noqa: F401 (fixtures)

from assay.contract import failure_message, result_message
from support import OUTCOME_ANNOTATION, wait_until

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO / "manifests" / "base" / "deployment.yaml"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
NO_GPU = {"nvidia.com/gpu": "0", "cpu": "100m", "memory": "64Mi"}


def _serialized(objects: list[Any]) -> str:
    sanitize = client.ApiClient().sanitize_for_serialization
    return json.dumps([sanitize(o) for o in objects])


def _finish(core_v1: client.CoreV1Api, namespace: str, evaluation: str, outcome: str, message: str) -> None:
    def running() -> list[client.V1Pod]:
        pods = core_v1.list_namespaced_pod(
            namespace, label_selector=f"assay.dev/evaluation={evaluation}"
        ).items
        return [
            p
            for p in pods
            if p.status.phase == "Running" and OUTCOME_ANNOTATION not in (p.metadata.annotations or {})
        ]

    for pod in wait_until(running, timeout=60, what=f"a running pod of {evaluation}"):
        annotations = {OUTCOME_ANNOTATION: outcome, "kwok.assay.dev/message": message}
        core_v1.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"annotations": annotations}})


def _task_pods(core_v1: client.CoreV1Api, namespace: str, count: int) -> list[client.V1Pod]:
    pods = core_v1.list_namespaced_pod(namespace, label_selector="assay.dev/evaluation").items
    return list(pods) if len(pods) >= count else []


def test_debug_password_appears_nowhere(
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    make_pool: Callable[..., str],  # noqa: F811
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    kwok_nodes: list[str],
) -> None:
    """Generated and user-given passwords, through success, failure and cancel, at debug log level."""
    given = f"given-{secrets.token_urlsafe(18)}"
    core_v1.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="my-debug"), string_data={"password": given}),
    )
    operator = OperatorProcess.start(
        "secrets", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path, extra_args=["--verbose"]
    )
    evaluations = Evaluations(custom_objects, namespace)
    try:
        wait_until(lambda: "Assay controller started" in operator.log(), timeout=60, what="the operator")
        pool = make_pool()
        debug_generated = {"enabled": True}
        debug_given = {"enabled": True, "passwordSecretRef": {"name": "my-debug", "key": "password"}}
        evaluations.create("gen-ok", pool, debug=debug_generated, resources=NO_GPU)
        evaluations.create("given-ok", pool, debug=debug_given, resources=NO_GPU)
        evaluations.create("given-fail", pool, debug=debug_given, resources=NO_GPU, backoffLimitPerTask=0)
        evaluations.create("gen-cancel", pool, debug=debug_generated, resources=NO_GPU)
        _finish(core_v1, namespace, "gen-ok", "succeed", result_message({"accuracy": 0.9}))
        _finish(core_v1, namespace, "given-ok", "succeed", result_message({"accuracy": 0.8}))
        _finish(core_v1, namespace, "given-fail", "fail", failure_message("HandlerFailed", "boom"))
        evaluations.wait_phase("gen-cancel", "Running", timeout=60)
        evaluations.patch_spec("gen-cancel", cancel=True)
        for name, phase in (("gen-ok", "Succeeded"), ("given-ok", "Succeeded"), ("given-fail", "Failed")):
            evaluations.wait_phase(name, phase, timeout=60)
        evaluations.wait_phase("gen-cancel", "Cancelled", timeout=60)

        passwords = {given}
        for name in ("gen-ok", "gen-cancel"):
            secret = core_v1.read_namespaced_secret(f"{name}-debug", namespace)
            passwords.add(base64.b64decode(secret.data["password"]).decode())
        assert all(len(p) >= 16 for p in passwords)
        written = {
            "evaluations": json.dumps(
                custom_objects.list_namespaced_custom_object(
                    "assay.dev", "v1alpha1", namespace, "evaluations"
                )
            ),
            "events": _serialized(core_v1.list_namespaced_event(namespace).items),
            "pods": _serialized(core_v1.list_namespaced_pod(namespace).items),
            "jobs": _serialized(batch_v1.list_namespaced_job(namespace).items),
            "services": _serialized(core_v1.list_namespaced_service(namespace).items),
            "configmaps": _serialized(core_v1.list_namespaced_config_map(namespace).items),
            "operator log": operator.log(),
            "metrics": operator.scrape() or "",
        }
        assert written["metrics"], "the metrics endpoint did not answer"
        assert "DEBUG" in written["operator log"], "the log was not at debug level"
        for where, text in written.items():
            for password in passwords:
                for form in (password, base64.b64encode(password.encode()).decode()):
                    assert form not in text, f"a debug password appears in the {where}"
        # Pods get the password only as a file of a Secret volume, never in a variable.
        secret_of = {"gen-ok": "gen-ok-debug", "gen-cancel": "gen-cancel-debug"}
        pods = core_v1.list_namespaced_pod(namespace).items
        assert pods
        for pod in pods:
            evaluation = pod.metadata.labels["assay.dev/evaluation"]
            secret = debug_password_volume(pod.spec).secret_name
            assert secret == secret_of.get(evaluation, "my-debug")
        print(
            f"SECURITY searched {sum(len(t) for t in written.values())} characters in {len(written)} places"
        )
    finally:
        operator.stop()


def test_task_pods_pass_the_restricted_pod_security_standard(
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    make_pool: Callable[..., str],  # noqa: F811
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    kwok_nodes: list[str],
) -> None:
    """Tasks with and without GPUs, debug on: their pods are admitted where `restricted` is enforced."""
    core_v1.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    operator = OperatorProcess.start("pss", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    evaluations = Evaluations(custom_objects, namespace)
    try:
        wait_until(lambda: "Assay controller started" in operator.log(), timeout=60, what="the operator")
        pool = make_pool()
        evaluations.create("cpu-only", pool, tasks=2, resources=NO_GPU)
        evaluations.create("one-gpu", pool, resources={"nvidia.com/gpu": "1"}, debug={"enabled": True})
        pods = wait_until(
            lambda: _task_pods(core_v1, namespace, 3),
            timeout=60,
            what="the task pods to be admitted",
            last_seen=lambda: [
                (e.reason, e.message)
                for e in core_v1.list_namespaced_event(namespace).items
                if e.reason == "FailedCreate"
            ],
        )
        for pod in pods:
            assert pod.spec.security_context.run_as_non_root is True
            assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
            container = pod.spec.containers[0].security_context
            assert container.allow_privilege_escalation is False
            assert container.capabilities.drop == ["ALL"]
        evaluations.wait_phase("cpu-only", "Running", timeout=60)
    finally:
        operator.stop()


def test_operator_pod_passes_the_restricted_pod_security_standard(
    namespace: str, core_v1: client.CoreV1Api
) -> None:
    """The Deployment's pod template, created (server-side dry run) in a namespace enforcing `restricted`."""
    core_v1.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    deployment = next(
        d for d in yaml.safe_load_all(DEPLOYMENT.read_text()) if d and d["kind"] == "Deployment"
    )
    template = deployment["spec"]["template"]
    spec = {**template["spec"], "serviceAccountName": "default"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-pss", **template["metadata"]},
        "spec": spec,
    }
    created = core_v1.create_namespaced_pod(namespace, pod, dry_run="All")
    assert created.spec.security_context.run_as_non_root is True
