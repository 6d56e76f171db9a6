"""End to end on the real node: the digits example (examples/digits) run by the operator in real pods.

The operator runs as a process on this machine; the runner runs in containers of ``assay-runner:dev`` (the
image ``make images`` built) on the real kubelet node, reading the example's model and data from a hostPath
volume and writing predictions to another, as ``make demo`` does. The summary in the Evaluation's status
must equal a local run of the same manifest (``assay run --local``); task logs come through the API; a
handler that cannot be imported fails the Evaluation with the runner's reason.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from operators import OperatorProcess
from real_node import real_node_or_skip

from assay.api import EVALUATION_PLURAL, GROUP, VERSION
from support import wait_until
from support.cluster import REPO_ROOT

pytestmark = [pytest.mark.realnode, pytest.mark.timeout(420)]

EXAMPLE = REPO_ROOT / "examples" / "digits"
VOLUMES_TEMPLATE = REPO_ROOT / "hack" / "demo" / "volumes.yaml.in"
ASSAY_BIN = Path(sys.executable).with_name("assay")
# Four predict shards and the evaluate step on two cores, with container starts: under a minute when warm.
EVALUATION_TIMEOUT_S = 240

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


def _checked(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def real_node(core_v1: client.CoreV1Api) -> str:
    return real_node_or_skip(core_v1)


@pytest.fixture(scope="module")
def digits_model(real_node: str) -> Path:
    """The example's trained model (``make example``); trained here when missing (a few seconds)."""
    model = EXAMPLE / "model" / "v1" / "classifier.pkl"
    if not model.exists():
        subprocess.run([sys.executable, str(EXAMPLE / "train.py")], cwd=REPO_ROOT, check=True, timeout=300)
    return model


@pytest.fixture(scope="module")
def crds_and_pool(kubectl: Kubectl, real_node: str) -> None:
    """The CRDs and the example's pool (cluster-wide, shared with `make demo`: left in place)."""
    _checked(kubectl("apply", "-k", str(REPO_ROOT / "crds")))
    _checked(
        kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/evaluations.assay.dev",
            "crd/resourcepools.assay.dev",
        )
    )
    _checked(kubectl("apply", "-f", str(EXAMPLE / "pool.yaml")))


@pytest.fixture
def example_volumes(kubectl: Kubectl, namespace: str, digits_model: Path) -> Iterator[Path]:
    """The claims the example names, bound to this checkout's examples/ and a fresh results directory."""
    # Under /tmp directly: the runner (UID 65532) must reach it, and pytest's tmp_path is private to root.
    results = Path(tempfile.mkdtemp(prefix="assay-e2e-results-", dir="/tmp"))
    results.chmod(0o777)
    manifest = (
        VOLUMES_TEMPLATE.read_text()
        .replace("@EXAMPLES_DIR@", str(REPO_ROOT / "examples"))
        .replace("@RESULTS_DIR@", str(results))
        .replace("@NAMESPACE@", namespace)
        .replace("@PREFIX@", namespace)
    )
    _checked(kubectl("apply", "-f", "-", input=manifest))
    try:
        yield results
    finally:
        kubectl("delete", "pv", f"{namespace}-examples", f"{namespace}-results", "--wait=false")
        shutil.rmtree(results, ignore_errors=True)


@pytest.fixture
def operator(kube: Path, namespace: str, crds_and_pool: None, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess.start("real-node", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    try:
        yield process
    finally:
        process.stop()


def _example_manifest(**changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLE / "evaluation.yaml").read_text())
    manifest["metadata"].update(changes.pop("metadata", {}))
    manifest["spec"].update(changes)
    return manifest


def _wait_for_end(
    custom_objects: client.CustomObjectsApi, namespace: str, name: str, operator: OperatorProcess
) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body = custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, name)
        status: dict[str, Any] = body.get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed", "Cancelled", "Expired") else None

    return wait_until(
        ended,
        timeout=EVALUATION_TIMEOUT_S,
        interval=1,
        what=f"evaluation {namespace}/{name} to end",
        last_seen=operator.log,
    )


def _local_summary(tmp_path: Path) -> dict[str, Any]:
    """The same manifest run on this machine by runner processes (no cluster)."""
    command = [str(ASSAY_BIN), "run", "-f", str(EXAMPLE / "evaluation.yaml"), "--local", "-o", "json"]
    result = subprocess.run(
        [*command, "--output-dir", str(tmp_path / "local-run")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)["summary"]
    return summary


def test_digits_example_in_real_pods_matches_a_local_run(
    real_node: str,
    namespace: str,
    example_volumes: Path,
    operator: OperatorProcess,
    kubectl: Kubectl,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    tmp_path: Path,
) -> None:
    manifest = _example_manifest()
    name = manifest["metadata"]["name"]
    _checked(kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest)))
    status = _wait_for_end(custom_objects, namespace, name, operator)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=2) + operator.log()

    # Several predict shards and the evaluate step, every one a real container on the real node.
    tasks = status["tasks"]
    assert sorted((t["step"], t["index"]) for t in tasks) == [("evaluate", 0)] + [
        ("predict", i) for i in range(manifest["spec"]["tasks"])
    ]
    assert {t["node"] for t in tasks} == {real_node}
    assert all(t["exitCode"] == 0 for t in tasks), tasks

    # The runner in pods and the runner on this machine agree on every metric.
    assert status["results"]["records"] == 899
    local = _local_summary(tmp_path)
    assert status["results"]["summary"] == pytest.approx(local, rel=1e-12)
    assert status["results"]["summary"]["accuracy"] > 0.95

    # Task logs through the API (apiserver -> kubelet -> containerd); predictions on the results volume.
    evaluate_pod = next(t["pod"] for t in tasks if t["step"] == "evaluate")
    log = core_v1.read_namespaced_pod_log(evaluate_pod, namespace, container="task")
    assert "step=evaluate" in log and "899 records" in log, log
    assert any(example_volumes.rglob("*")), "no predictions written to the results volume"


def test_a_handler_that_cannot_be_imported_fails_with_its_reason(
    real_node: str,
    namespace: str,
    example_volumes: Path,
    operator: OperatorProcess,
    kubectl: Kubectl,
    custom_objects: client.CustomObjectsApi,
) -> None:
    manifest = _example_manifest(
        metadata={"name": "digits-no-such-handler"},
        handler="digits_handler:NoSuchClass",
        tasks=2,
        backoffLimitPerTask=0,
    )
    _checked(kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest)))
    status = _wait_for_end(custom_objects, namespace, "digits-no-such-handler", operator)

    assert status["phase"] == "Failed", json.dumps(status, indent=2)
    failed = [t for t in status["tasks"] if t["phase"] == "Failed"]
    assert failed, status["tasks"]
    assert {t["reason"] for t in failed} == {"HandlerNotImportable"}, failed
    assert {t["exitCode"] for t in failed} == {11}
    condition = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert condition["status"] == "True"
    assert "HandlerNotImportable" in condition["message"], condition


def test_debug_mode_in_real_pods_reads_its_password_file_and_goes_on_to_evaluate(
    real_node: str,
    namespace: str,
    example_volumes: Path,
    operator: OperatorProcess,
    kubectl: Kubectl,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
) -> None:
    """Debug mode as a user meets it: real containers (uid 65532, restricted) read the generated password
    from the Secret volume's file, every predict task ends after its work, and the evaluate task serves the
    debug port with its summary kept; the password is in no container's environment."""
    manifest = _example_manifest(
        metadata={"name": "digits-debug"}, tasks=2, debug={"enabled": True}, autoReleaseSeconds=600
    )
    _checked(kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest)))

    def evaluate_serving() -> client.V1Pod | None:
        pods = core_v1.list_namespaced_pod(
            namespace, label_selector="assay.dev/evaluation=digits-debug"
        ).items
        for pod in pods:
            if pod.metadata.name.startswith("digits-debug-evaluate") and pod.status.phase == "Running":
                log = core_v1.read_namespaced_pod_log(pod.metadata.name, namespace, container="task")
                if "the pod stays up" in log:
                    return pod
        return None

    evaluate = wait_until(
        evaluate_serving,
        timeout=EVALUATION_TIMEOUT_S,
        interval=1,
        what="the evaluate pod of digits-debug to finish its work and stay up for debugging",
        last_seen=operator.log,
    )

    def read() -> dict[str, Any]:
        found: dict[str, Any] = custom_objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, "digits-debug"
        )
        return found

    def predicts_of(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [t for t in (body.get("status") or {}).get("tasks", []) if t["step"] == "predict"]

    def predicted() -> dict[str, Any] | None:
        body = read()
        return body if [t["phase"] for t in predicts_of(body)] == ["Succeeded"] * 2 else None

    # Task entries are progress, written paced: they may trail the pods by seconds.
    body = wait_until(
        predicted,
        timeout=60,
        what="both predict tasks Succeeded in the status",
        last_seen=lambda: predicts_of(read()),
    )
    secret = core_v1.read_namespaced_secret(body["status"]["debug"]["passwordSecret"], namespace)
    password = base64.b64decode(secret.data["password"]).decode()
    for pid in ("1", "self"):
        environ = _checked(
            kubectl(
                "exec",
                "-n",
                namespace,
                evaluate.metadata.name,
                "-c",
                "task",
                "--",
                "cat",
                f"/proc/{pid}/environ",
            )
        )
        assert "ASSAY_DEBUG_PASSWORD_FILE=" in environ and password not in environ
    _checked(kubectl("delete", "evaluation", "-n", namespace, "digits-debug", "--wait=false"))
