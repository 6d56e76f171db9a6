"""Smoke test of the real node (hack/node-up.sh): real containers from the locally built runner image.

A pod on the node runs Python from ``assay.local/runner:dev`` (``make images``): its logs come back through
the API (apiserver -> kubelet -> containerd), and its termination message and exit code reach the pod status
the way the controller reads them (``assay.contract``). Skipped, with the reason, where the node could not
start.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from kubernetes import client
from real_node import POOL_LABEL, REAL_NODE_TAINT, RUNNER_IMAGE, real_node_or_skip

from assay.contract import (
    TaskFailure,
    TaskResult,
    failure_message,
    parse_termination_message,
    result_message,
)
from support import wait_until

pytestmark = pytest.mark.realnode

# Starting a container from a warm image takes a second or two; a busy 2-core machine gets room.
POD_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def real_node(core_v1: client.CoreV1Api) -> str:
    """The name of the Ready real node; skips with the reason when there is none."""
    return real_node_or_skip(core_v1)


def _runner_pod(name: str, script: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never",
            node_selector=dict([POOL_LABEL]),
            tolerations=[REAL_NODE_TAINT],
            termination_grace_period_seconds=1,
            containers=[
                client.V1Container(
                    name="task",
                    image=RUNNER_IMAGE,
                    # Built locally and imported into the node: never pulled.
                    image_pull_policy="Never",
                    command=["python", "-c", textwrap.dedent(script)],
                    resources=client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "128Mi"}),
                )
            ],
        ),
    )


def _finished(core_v1: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    pod = core_v1.read_namespaced_pod(name, namespace)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


@pytest.fixture
def run_pods(core_v1: client.CoreV1Api, namespace: str, real_node: str) -> Iterator[dict[str, client.V1Pod]]:
    """Creates the smoke test's pods at once (they start in parallel) and yields them finished, by name."""
    succeed = """
        import json, sys
        import numpy, sklearn
        import assay
        from assay.contract import result_message
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        print(f"hello from python {python}, assay {assay.__version__}, numpy {numpy.__version__}, "
              f"scikit-learn {sklearn.__version__}", flush=True)
        with open("/dev/termination-log", "w") as f:
            f.write(result_message({"accuracy": 0.5, "python_minor": sys.version_info.minor}, records=2))
    """
    fail = """
        import sys
        from assay.contract import ExitCode, failure_message
        print("about to fail", flush=True)
        with open("/dev/termination-log", "w") as f:
            f.write(failure_message(ExitCode.HANDLER_FAILED.reason, "boom: the handler raised"))
        sys.exit(ExitCode.HANDLER_FAILED)
    """
    for name, script in (("succeeds", succeed), ("fails", fail)):
        core_v1.create_namespaced_pod(namespace, _runner_pod(name, script))
    finished = {
        name: wait_until(
            lambda name=name: _finished(core_v1, namespace, name),
            timeout=POD_TIMEOUT_S,
            what=f"pod {namespace}/{name} on the real node to finish",
            last_seen=lambda name=name: core_v1.read_namespaced_pod(name, namespace).status,
        )
        for name in ("succeeds", "fails")
    }
    yield finished


def _terminated(pod: client.V1Pod) -> client.V1ContainerStateTerminated:
    (status,) = pod.status.container_statuses
    assert status.state.terminated is not None, status
    return status.state.terminated


def test_runner_image_runs_on_the_real_node(
    run_pods: dict[str, client.V1Pod], core_v1: client.CoreV1Api, namespace: str, real_node: str
) -> None:
    pod = run_pods["succeeds"]
    assert pod.spec.node_name == real_node
    assert pod.status.phase == "Succeeded", pod.status
    assert _terminated(pod).exit_code == 0

    logs = core_v1.read_namespaced_pod_log("succeeds", namespace, container="task")
    assert "hello from python 3.11, assay " in logs, logs
    assert "scikit-learn " in logs, logs

    # The evaluate step's channel: the termination message reaches the pod status byte for byte.
    message = _terminated(pod).message
    assert message == result_message({"accuracy": 0.5, "python_minor": 11}, records=2)
    assert parse_termination_message(message) == TaskResult(
        summary={"accuracy": 0.5, "python_minor": 11}, records=2
    )


def test_failing_task_reports_reason_and_exit_code(
    run_pods: dict[str, client.V1Pod], core_v1: client.CoreV1Api, namespace: str
) -> None:
    pod = run_pods["fails"]
    assert pod.status.phase == "Failed", pod.status
    terminated = _terminated(pod)
    assert terminated.exit_code == 12
    assert parse_termination_message(terminated.message) == TaskFailure(
        reason="HandlerFailed", message="boom: the handler raised"
    )
    assert terminated.message == failure_message("HandlerFailed", "boom: the handler raised")
    assert "about to fail" in core_v1.read_namespaced_pod_log("fails", namespace, container="task")
