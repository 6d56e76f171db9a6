"""The validating webhook on the real apiserver: Evaluations that cannot run in their pool are refused.

The handlers of ``assay.controller.admission.webhooks`` run in an in-process kopf operator of their own (a
private registry: the pool index and the handlers, registered by the operator's own functions), served at
https://localhost and registered by kopf in a ValidatingWebhookConfiguration that selects only this test's
objects (by label), so other tests sharing the cluster never meet it. Its failurePolicy is Fail, as
installed: an Evaluation the webhook could not judge (it crashed, it is unreachable) is refused, never
counted as admitted.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
import kubernetes_asyncio
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION
from assay.cli.main import app
from assay.controller import indexes
from assay.controller.admission import webhooks
from assay.controller.admission.tls import build_self_signed
from assay.controller.kube import Cluster, api_client
from assay.errors import Invalid
from support import wait_until

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
TEST_LABEL = "assay.dev/webhook-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def webhook_label(
    assay_crds: None, kube: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Runs the webhook; yields the label an Evaluation needs to be sent to it."""
    run_id = secrets.token_hex(4)
    label = {TEST_LABEL: run_id}
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_with_kubeconfig)  # reads KUBECONFIG, set below
    kopf.index(GROUP, VERSION, POOL_PLURAL, registry=registry)(indexes.pools_by_name)
    webhooks.register(registry, labels=label)

    certificate = build_self_signed(["localhost"], datetime.now(UTC))
    cert_path, key_path = certificate.write_to(tmp_path_factory.mktemp("webhook-tls"))
    configuration = f"assay-test-{run_id}.{GROUP}"
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    settings.posting.enabled = False
    settings.admission.managed = configuration
    settings.admission.server = kopf.WebhookServer(
        addr="127.0.0.1", host="localhost", port=_free_port(), certfile=cert_path, pkeyfile=key_path
    )
    ready, stop = threading.Event(), threading.Event()

    async def operate() -> None:
        # kopf logs in from KUBECONFIG; the webhook's own reads go through a Cluster, as in the operator.
        await kubernetes_asyncio.config.load_kube_config(config_file=str(kube))
        cluster = Cluster(api_client())
        try:
            await kopf.operator(
                registry=registry,
                settings=settings,
                clusterwide=True,
                memo=kopf.Memo(cluster=cluster),
                ready_flag=ready,
                stop_flag=stop,
            )
        finally:
            await cluster.close()

    def run() -> None:
        asyncio.run(operate())

    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUBECONFIG", str(kube))
        thread = threading.Thread(target=run, name="assay-webhook-test", daemon=True)
        thread.start()
        assert ready.wait(60), "the in-process kopf operator did not start within 60 s"
        admission = client.AdmissionregistrationV1Api(kubernetes_client(kube))
        try:
            wait_until(
                lambda: _configuration_exists(admission, configuration),
                timeout=30,
                what=f"kopf to create ValidatingWebhookConfiguration {configuration}",
            )
            yield label
        finally:
            stop.set()
            thread.join(30)
            try:
                admission.delete_validating_webhook_configuration(configuration)
            except ApiException as exc:
                if exc.status != 404:
                    raise


def kubernetes_client(kube: Path) -> client.ApiClient:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kube))


def _configuration_exists(admission: client.AdmissionregistrationV1Api, name: str) -> bool:
    try:
        admission.read_validating_webhook_configuration(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.fixture
def pool(custom_objects: client.CustomObjectsApi, namespace: str) -> Iterator[str]:
    """A pool that admits only this test's namespace: GPUs 0..2 per task, quota 4, auto-release <= 1 h."""
    name = f"webhook-{secrets.token_hex(3)}"
    custom_objects.create_cluster_custom_object(
        GROUP,
        VERSION,
        POOL_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ResourcePool",
            "metadata": {"name": name},
            "spec": {
                "namespaces": [namespace],
                "resources": [{"name": "nvidia.com/gpu", "default": 1, "min": "0", "max": "2"}],
                "quota": {"nvidia.com/gpu": "4"},
                "autoRelease": {"defaultSeconds": 600, "maxSeconds": 3600},
            },
        },
    )
    try:
        yield name
    finally:
        try:
            custom_objects.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def manifest(name: str, pool: str, label: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": name, "labels": label},
        "spec": {
            "pool": pool,
            "model": {"name": "m", "uri": "pvc://models/m"},
            "handler": "mod:Attr",
            "dataset": {"name": "d", "uri": "pvc://data/d"},
            **spec,
        },
    }


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422, caught.value.body
    return str(json.loads(caught.value.body)["message"])


def test_an_evaluation_that_fits_its_pool_is_admitted(
    custom_objects: client.CustomObjectsApi, namespace: str, pool: str, webhook_label: dict[str, str]
) -> None:
    body = manifest("fits", pool, webhook_label, tasks=2, resources={"nvidia.com/gpu": 2})
    created = custom_objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, EVALUATION_PLURAL, body
    )
    assert created["metadata"]["name"] == "fits"


def test_unknown_pool_is_refused(
    custom_objects: client.CustomObjectsApi, namespace: str, webhook_label: dict[str, str]
) -> None:
    body = manifest("lost", "no-such-pool", webhook_label)
    message = refused(
        lambda: custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, body
        )
    )
    assert 'spec.pool: ResourcePool "no-such-pool" does not exist' in message


def test_forbidden_namespace_is_refused(
    custom_objects: client.CustomObjectsApi,
    core_v1: client.CoreV1Api,
    namespace: str,
    pool: str,
    webhook_label: dict[str, str],
) -> None:
    other = f"{namespace[:50]}-other"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        body = manifest("elsewhere", pool, webhook_label)
        message = refused(
            lambda: custom_objects.create_namespaced_custom_object(
                GROUP, VERSION, other, EVALUATION_PLURAL, body
            )
        )
        assert f'namespace "{other}" may not use ResourcePool "{pool}"' in message
    finally:
        core_v1.delete_namespace(other)


def test_out_of_range_gpus_are_refused(
    custom_objects: client.CustomObjectsApi, namespace: str, pool: str, webhook_label: dict[str, str]
) -> None:
    body = manifest("greedy", pool, webhook_label, resources={"nvidia.com/gpu": 4})
    message = refused(
        lambda: custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, body
        )
    )
    assert f"spec.resources[nvidia.com/gpu]: 4 is outside pool {pool}'s range [0, 2] per task" in message


def test_a_missing_debug_secret_or_a_short_password_is_refused_and_a_good_one_admitted(
    custom_objects: client.CustomObjectsApi,
    core_v1: client.CoreV1Api,
    namespace: str,
    pool: str,
    webhook_label: dict[str, str],
) -> None:
    debug = {"enabled": True, "passwordSecretRef": {"name": "dbg"}}
    body = manifest("debugged", pool, webhook_label, debug=debug)

    def create() -> object:
        return custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, body
        )

    assert 'Secret "dbg" not found in namespace' in refused(create)
    core_v1.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="dbg"), string_data={"password": "s3cret-value"}),
    )
    short = refused(create)
    assert 'key "password" of Secret "dbg" holds 12 characters' in short
    assert "at least 16 characters" in short and "s3cret-value" not in short
    long_enough = "s3cret-value-long-enough"
    core_v1.patch_namespaced_secret("dbg", namespace, {"stringData": {"password": long_enough}})
    created = create()
    assert long_enough not in json.dumps(created)


def test_updates_check_only_auto_release_and_never_block_suspend(
    custom_objects: client.CustomObjectsApi, namespace: str, pool: str, webhook_label: dict[str, str]
) -> None:
    body = manifest("updated", pool, webhook_label)
    custom_objects.create_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, body)

    def patch(spec: dict[str, Any]) -> object:
        return custom_objects.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, "updated", {"spec": spec}
        )

    message = refused(lambda: patch({"autoReleaseSeconds": 7200}))
    assert f"exceeds pool {pool}'s maximum of 3600 seconds" in message
    patch({"autoReleaseSeconds": 1800})
    custom_objects.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, pool)
    wait_until(lambda: not _pool_exists(custom_objects, pool), timeout=10, what=f"pool {pool} to be gone")
    patch({"suspend": True})  # the pool is gone: a suspend (or a finalizer removal) must still pass


def _pool_exists(custom_objects: client.CustomObjectsApi, name: str) -> bool:
    try:
        custom_objects.get_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_assay_create_dry_run_shows_the_webhooks_refusal_and_creates_nothing(
    custom_objects: client.CustomObjectsApi,
    namespace: str,
    kube: Path,
    webhook_label: dict[str, str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "lost.yaml"
    path.write_text(json.dumps(manifest("lost-dry", "no-such-pool", webhook_label)))
    result = CliRunner().invoke(
        app, ["create", "-f", str(path), "--dry-run", "--kubeconfig", str(kube), "-n", namespace]
    )
    assert result.exit_code == Invalid.exit_code, result.output
    assert 'ResourcePool "no-such-pool" does not exist' in result.stderr
    with pytest.raises(ApiException) as caught:
        custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, "lost-dry")
    assert caught.value.status == 404
