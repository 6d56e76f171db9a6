"""Per-record results read through the cluster: ``Client.results`` and ``assay results`` find the output in
``status.results.location``; a ``file://`` output is read directly, a ``pvc://`` one through the reader pod.

No operator runs in these namespaces: each test writes an evaluation's status as the operator would after a
run (the operator's part is tested elsewhere), over an output the runner's own writer produced. The reader
pod runs on a KWOK node, which runs no container: kwok serves the pod's log from a file, and that file is
what the reader's script prints when run here on the same output (tests/unit/test_results.py runs it too).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from results_scenarios import METRICS, finished_evaluation, write_output
from typer.testing import CliRunner

from assay import Client
from assay.api import EVALUATION_PLURAL, GROUP, VERSION
from assay.cli.main import app
from assay.errors import NotFound
from assay.results_pod import LABEL_RESULTS_OF, READER_CONTAINER, READER_SCRIPT
from support import wait_until

KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"


def test_a_file_output_is_read_by_the_sdk_and_the_cli(
    assay_crds: None, kube: Path, custom_objects: client.CustomObjectsApi, namespace: str, tmp_path: Path
) -> None:
    output = write_output(tmp_path / "run")
    finished_evaluation(custom_objects, namespace, "local-run", output.as_uri())
    with Client(kube, namespace=namespace) as sdk:
        page = sdk.results("local-run", only_wrong=True)
        assert [(r.index, r.label, r.prediction) for r in page.rows] == [(2, 2, 0), (5, 2, 0), (7, 1, 2)]
        assert page.records == 10 and page.metrics == METRICS
        assert [r.index for r in sdk.results("local-run", offset=8, limit=5).rows] == [8, 9]
    result = CliRunner().invoke(
        app, ["results", "local-run", "-o", "csv", "--limit", "3", "--kubeconfig", str(kube), "-n", namespace]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "record,label,prediction,correct",
        "0,0,0,true",
        "1,1,1,true",
        "2,2,0,false",
    ]


def test_an_evaluation_without_results_says_why(
    assay_crds: None,
    kube: Path,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    finished_evaluation(custom_objects, namespace, "kept-nothing", "")
    custom_objects.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        EVALUATION_PLURAL,
        "kept-nothing",
        {"status": {"results": {"location": None}}},
    )
    with Client(kube, namespace=namespace) as sdk:
        with pytest.raises(NotFound, match=r"give it spec\.output"):
            sdk.results("kept-nothing")
        finished_evaluation(custom_objects, namespace, "claim-gone", "pvc://gone/x")
        with pytest.raises(NotFound, match="gone"):
            sdk.results("claim-gone")
        assert not core_v1.list_namespaced_pod(namespace).items  # no reader pod was left behind


def bound_claim(core: client.CoreV1Api, namespace: str, directory: Path) -> str:
    """A claim bound to a hostPath volume (as hack/demo/volumes.yaml.in binds the demo's)."""
    volume = f"assay-results-test-{secrets.token_hex(3)}"
    core.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "storageClassName": "assay-test",
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(directory), "type": "Directory"},
                "claimRef": {"namespace": namespace, "name": "results"},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "results"},
            "spec": {
                "storageClassName": "assay-test",
                "volumeName": volume,
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    wait_until(
        lambda: core.read_namespaced_persistent_volume_claim("results", namespace).status.phase == "Bound",
        timeout=30,
        what="the claim to bind",
    )
    return volume


def serve_reader_log(custom: client.CustomObjectsApi, namespace: str, output: Path, work: Path) -> None:
    """kwok serves every reader container's log in ``namespace`` from what the script prints on ``output``."""
    printed = subprocess.run(
        [sys.executable, "-c", READER_SCRIPT, str(output)], capture_output=True, check=True, text=True
    ).stdout
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    log = work / "reader.log"
    log.write_text("".join(f"{stamp} stdout F {line}\n" for line in printed.splitlines()))
    try:
        custom.create_cluster_custom_object(
            KWOK_GROUP,
            KWOK_VERSION,
            "clusterlogs",
            {
                "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
                "kind": "ClusterLogs",
                "metadata": {"name": f"reader-{namespace}"},
                "spec": {
                    "selector": {"matchNamespaces": [namespace]},
                    "logs": [{"containers": [READER_CONTAINER], "logsFile": str(log), "follow": False}],
                },
            },
        )
    except ApiException as error:
        if error.status == 404:
            pytest.skip("kwok does not serve ClusterLogs here: start the cluster with hack/kwok/kwokctl.yaml")
        raise


@pytest.fixture
def claimed_output(
    assay_crds: None,
    kwok_nodes: list[str],
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Callable[[str], str]]:
    """``claimed_output(name)``: a finished evaluation ``name`` whose output is on claim ``results`` (bound to
    a hostPath volume), with kwok serving the reader's log; returns its location. Once per test: kwok
    serves one log to every reader container of the namespace."""
    root = tmp_path / "claim"
    root.mkdir()
    volume = bound_claim(core_v1, namespace, root)
    served: list[str] = []  # the ClusterLogs made

    def make(name: str) -> str:
        output = write_output(root / namespace / name)
        assert not served, "one claimed output per test"
        serve_reader_log(custom_objects, namespace, output, tmp_path)
        served.append(f"reader-{namespace}")
        location = f"pvc://results/{namespace}/{name}"
        finished_evaluation(custom_objects, namespace, name, location)
        return location

    try:
        yield make
    finally:
        for logs in served:
            custom_objects.delete_cluster_custom_object(KWOK_GROUP, KWOK_VERSION, "clusterlogs", logs)
        core_v1.delete_persistent_volume(volume)


def test_a_pvc_output_is_read_through_a_restricted_reader_pod_that_is_removed_afterwards(
    kube: Path, core_v1: client.CoreV1Api, namespace: str, claimed_output: Callable[[str], str]
) -> None:
    # The namespace enforces `restricted`: the API server refuses a reader pod that does not meet it.
    core_v1.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    location = claimed_output("remote-run")
    with Client(kube, namespace=namespace) as sdk:
        page = sdk.results("remote-run", only_wrong=True, limit=2)
    assert [(r.index, r.label, r.prediction) for r in page.rows] == [(2, 2, 0), (5, 2, 0)] and page.more
    assert page.metrics == METRICS and page.location == location

    def readers() -> list[client.V1Pod]:
        return core_v1.list_namespaced_pod(namespace, label_selector=LABEL_RESULTS_OF).items

    wait_until(lambda: not readers(), timeout=30, what="the reader pod to be deleted")


def test_the_reader_pod_is_owned_by_the_evaluation(
    kube: Path,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
    claimed_output: Callable[[str], str],
) -> None:
    """The reader pod as the API server stored it: owned by the Evaluation, the claim mounted read-only."""
    claimed_output("owned")
    evaluation = custom_objects.get_namespaced_custom_object(
        GROUP, VERSION, namespace, EVALUATION_PLURAL, "owned"
    )
    with Client(kube, namespace=namespace) as sdk:
        version = core_v1.list_namespaced_pod(namespace).metadata.resource_version
        assert len(sdk.results("owned").rows) == 10
    # The pod is gone by now: a watch from before the read replays its creation.
    (pod,) = [e["raw_object"] for e in _watch_from(core_v1, namespace, version) if e["type"] == "ADDED"]
    (owner,) = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Evaluation",
        "owned",
        evaluation["metadata"]["uid"],
    )
    (claim,) = pod["spec"]["volumes"]
    assert claim["persistentVolumeClaim"] == {"claimName": "results", "readOnly": True}


def _watch_from(core: client.CoreV1Api, namespace: str, version: str) -> list[dict[str, Any]]:
    from kubernetes import watch

    stream = watch.Watch()
    return list(
        stream.stream(core.list_namespaced_pod, namespace, resource_version=version, timeout_seconds=3)
    )
