"""Fixtures for tests against a real cluster (see tests/support/ and the README's "Local cluster").

* ``kube`` (session): path of the kubeconfig of the cluster under test, as support.cluster decides:
  ``ASSAY_KUBECONFIG``, else the local cluster (``.cluster/kubeconfig``, started if it was not up);
* ``api_client`` (session), ``core_v1``, ``batch_v1``, ``rbac_v1``, ``custom_objects``: Kubernetes clients;
* ``kubectl``: runs kubectl against that cluster, returns the CompletedProcess;
* ``namespace``: a fresh namespace per test (its default service account ready), deleted afterwards;
* ``kwok_nodes`` (session): names of the KWOK fake nodes; skips the test when there are none;
* ``fake_pods``: a :class:`support.FakePods` driver (implies the ``kwok`` marker);
* ``world`` (module): the CLI, SDK and console scenario (:class:`cli_scenarios.World`) in a namespace of the
  test module's own, named after it (``test_cli`` → ``cli-…``).

Tests marked ``@pytest.mark.kwok`` are skipped with a reason on clusters without KWOK fake nodes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_scenarios import World, world_in_new_namespace
from kubernetes import client, config

from support import FakePods, fake_node_names, kubectl_binary, session_cluster, wait_until

# Label on every namespace a test creates, to find leftovers: kubectl get ns -l assay.dev/test
TEST_NAMESPACE_LABEL = "assay.dev/test"


@pytest.fixture(scope="session")
def kube(pytestconfig: pytest.Config) -> Path:
    """The kubeconfig of the cluster under test (tests/conftest.py stops it if the session started it)."""
    return session_cluster(pytestconfig).kubeconfig


@pytest.fixture(scope="session")
def api_client(kube: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kube))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def batch_v1(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture(scope="session")
def rbac_v1(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api_client)


@pytest.fixture(scope="session")
def custom_objects(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="session")
def kubectl(kube: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``kubectl("get", "pods", "-n", ns)``: runs kubectl on the cluster under test; never raises."""
    binary = kubectl_binary()

    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "--kubeconfig", str(kube), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def assay_crds(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """crds/ applied (server-side, so re-applying the same files is a no-op) and Established."""
    from assay.api import GROUP
    from assay.api.crdgen import MODELS, file_name

    crds_dir = Path(__file__).resolve().parents[2] / "crds"
    args = [arg for model in MODELS for arg in ("-f", str(crds_dir / file_name(model)))]
    applied = kubectl("apply", "--server-side", "--force-conflicts", *args)
    assert applied.returncode == 0, applied.stderr
    for model in MODELS:
        crd = f"crd/{model.resource.plural}.{GROUP}"  # type: ignore[attr-defined]
        waited = kubectl("wait", "--for=condition=Established", "--timeout=60s", crd)
        assert waited.returncode == 0, waited.stderr


def _namespace_name(test_name: str) -> str:
    """A valid, unique namespace name that tells which test made it."""
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


@contextlib.contextmanager
def fresh_namespace(core_v1: client.CoreV1Api, name: str) -> Iterator[str]:
    """Namespace ``name``, ready for pods, deleted afterwards (set ASSAY_KEEP_NAMESPACES=1 to keep it)."""
    core_v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"}))
    )
    try:
        # The controller-manager creates the default service account a moment later; pods need it.
        wait_until(
            lambda: (
                core_v1.list_namespaced_service_account(name, field_selector="metadata.name=default").items
            ),
            timeout=30,
            what=f"the default service account in namespace {name}",
        )
        yield name
    finally:
        if not os.environ.get("ASSAY_KEEP_NAMESPACES"):
            core_v1.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespace(request: pytest.FixtureRequest, core_v1: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace for this test."""
    with fresh_namespace(core_v1, _namespace_name(request.node.name)) as name:
        yield name


@pytest.fixture
def second_namespace(namespace: str, core_v1: client.CoreV1Api) -> Iterator[str]:
    """A second fresh namespace, for tests that span two."""
    with fresh_namespace(core_v1, f"{namespace}-b") as name:
        yield name


@pytest.fixture(scope="session")
def kwok_nodes(core_v1: client.CoreV1Api) -> list[str]:
    """The KWOK fake nodes' names; skips when the cluster has none."""
    names = fake_node_names(core_v1)
    if not names:
        pytest.skip("needs KWOK fake nodes (annotated kwok.x-k8s.io/node=fake); this cluster has none")
    return names


@pytest.fixture
def fake_pods(kwok_nodes: list[str], core_v1: client.CoreV1Api) -> FakePods:
    """Drives pods on the KWOK nodes: wait for them, make them succeed or fail (support.FakePods)."""
    return FakePods(core_v1)


@pytest.fixture(autouse=True)
def _skip_kwok_tests_without_kwok(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("kwok") is not None:
        request.getfixturevalue("kwok_nodes")


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    assay_crds: None,
    kube: Path,
    api_client: client.ApiClient,
    kwok_nodes: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    """Three evaluations driven on KWOK nodes (cli_scenarios.build_world), in a namespace named after the
    test module (test_cli → cli-…) and shared by its tests; torn down and deleted after them."""
    module = request.module.__name__.rpartition(".")[2]
    prefix = module.removeprefix("test_").replace("_", "-")
    with world_in_new_namespace(
        api_client, kube, prefix, tmp_path_factory.mktemp(f"{prefix}-world")
    ) as built:
        yield built
