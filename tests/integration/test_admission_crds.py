"""The generated CRDs on a real apiserver: schema and CEL rejections, immutability, defaults, columns.

No operator runs here: everything checked is enforced by the apiserver from crds/ alone.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from assay.api import (
    EVALUATION_PLURAL,
    GROUP,
    IMMUTABLE_SPEC_MESSAGE,
    POOL_PLURAL,
    VERSION,
    Condition,
    ConditionType,
    Cost,
    Evaluation,
    EvaluationStatus,
    Phase,
    Reason,
    ResourcePool,
    Results,
    TaskCounts,
    TaskPhase,
    TaskStatus,
)
from assay.contract import Step
from support import wait_until

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def evaluation_manifest(name: str, pool: str = "some-pool", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": name},
        "spec": {
            "pool": pool,
            "model": {"name": "mnist-cnn", "version": "v3", "uri": "pvc://models/mnist-cnn/v3"},
            "handler": "mnist_eval:MNISTEvaluator",
            "dataset": {"name": "mnist-test", "uri": "pvc://datasets/mnist/v1"},
            "runtime": {"image": "registry.invalid/rt:1"},
            "resources": {"nvidia.com/gpu": 1, "memory": "16Gi"},
            **spec,
        },
    }


def create(custom_objects: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return custom_objects.create_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, body)


def rejection(call: Callable[[], object]) -> str:
    """The apiserver's message for a call that must be refused with 422."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422, caught.value.body
    return str(json.loads(caught.value.body)["message"])


@pytest.fixture
def pool_name() -> Iterator[str]:
    yield f"test-pool-{secrets.token_hex(3)}"


@pytest.mark.usefixtures("assay_crds")
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"tasks": 0}, "spec.tasks: Invalid value: 0"),
        ({"tasks": 1001}, "should be less than or equal to 1000"),
        ({"handler": "mnist_eval"}, "handler must be module:attribute, e.g. mnist_eval:MNISTEvaluator"),
        ({"handler": "a:b:c"}, "handler must be module:attribute"),
        ({"autoReleaseSeconds": 30}, "autoReleaseSeconds must be 0 (never release) or at least 60 seconds"),
        ({"autoReleaseSeconds": -1}, "spec.autoReleaseSeconds"),
        ({"resources": {"nvidia.com/gpu": "1GB"}}, "spec.resources.nvidia.com/gpu"),
        ({"resources": {"cpu": -2}}, "spec.resources.cpu"),
        ({"backoffLimitPerTask": 11}, "spec.backoffLimitPerTask"),
        ({"pool": "Not_A_Pool"}, "pool must be the name of a ResourcePool"),
        ({"model": {"name": "m", "uri": "models/m"}}, "uri must be a location with a scheme"),
        ({"model": {"name": "m"}}, "spec.model.uri: Required value"),
        ({"dataset": {"name": "d", "uri": "pvc://" + "x" * 3000}}, "spec.dataset.uri: Too long"),
        (
            {"debug": {"enabled": False, "passwordSecretRef": {"name": "dbg"}}},
            "set debug.enabled: true or remove passwordSecretRef",
        ),
    ],
)
def test_invalid_evaluations_are_rejected_with_a_message(
    custom_objects: client.CustomObjectsApi, namespace: str, spec: dict[str, Any], expected: str
) -> None:
    message = rejection(lambda: create(custom_objects, namespace, evaluation_manifest("bad", **spec)))
    assert expected in message


@pytest.mark.usefixtures("assay_crds")
def test_required_fields_are_named(custom_objects: client.CustomObjectsApi, namespace: str) -> None:
    body = evaluation_manifest("bare")
    body["spec"] = {"pool": "p"}
    message = rejection(lambda: create(custom_objects, namespace, body))
    for field in ("spec.model", "spec.handler", "spec.dataset"):
        assert f"{field}: Required value" in message


@pytest.mark.usefixtures("assay_crds")
def test_defaults_are_applied_and_the_stored_object_reads_back(
    custom_objects: client.CustomObjectsApi, namespace: str
) -> None:
    stored = create(custom_objects, namespace, evaluation_manifest("defaults", debug={"enabled": True}))
    spec = stored["spec"]
    assert (spec["tasks"], spec["suspend"], spec["cancel"], spec["backoffLimitPerTask"]) == (
        1,
        False,
        False,
        1,
    )
    assert spec["debug"] == {"enabled": True}
    assert spec["resources"] == {"nvidia.com/gpu": 1, "memory": "16Gi"}  # int-or-string kept as written
    evaluation = Evaluation.model_validate(stored)
    assert evaluation.spec.resources == {"nvidia.com/gpu": "1", "memory": "16Gi"}
    assert evaluation.namespace == namespace and evaluation.metadata.uid


@pytest.mark.usefixtures("assay_crds")
def test_run_spec_is_immutable_but_suspend_cancel_and_auto_release_change(
    custom_objects: client.CustomObjectsApi, namespace: str
) -> None:
    create(custom_objects, namespace, evaluation_manifest("immutable"))

    def patch(spec: dict[str, Any]) -> dict[str, Any]:
        return custom_objects.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, "immutable", {"spec": spec}
        )

    for change in (
        {"tasks": 2},
        {"handler": "other:Handler"},
        {"model": {"name": "mnist-cnn", "version": "v4", "uri": "pvc://models/mnist-cnn/v3"}},
        {"resources": {"nvidia.com/gpu": 2}},
        {"resources": None},  # removing an optional field is a change too
        {"output": {"pvc": "results"}},  # and so is adding one
    ):
        assert IMMUTABLE_SPEC_MESSAGE in rejection(lambda change=change: patch(change)), change

    assert patch({"suspend": True})["spec"]["suspend"] is True
    assert patch({"autoReleaseSeconds": 600})["spec"]["autoReleaseSeconds"] == 600
    assert "autoReleaseSeconds" not in patch({"autoReleaseSeconds": None})["spec"]
    assert patch({"suspend": False, "cancel": True})["spec"]["cancel"] is True
    message = rejection(lambda: patch({"cancel": False}))
    assert "cancel cannot be undone; create a new Evaluation to run again" in message


@pytest.mark.usefixtures("assay_crds")
def test_reapplying_the_same_manifest_changes_nothing(kubectl: Kubectl, namespace: str) -> None:
    manifest = yaml.safe_dump(evaluation_manifest("gitops"))
    first = kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    assert first.returncode == 0, first.stderr
    again = kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout


@pytest.mark.usefixtures("assay_crds")
def test_status_written_from_the_models_is_accepted_and_shown(
    custom_objects: client.CustomObjectsApi, kubectl: Kubectl, namespace: str
) -> None:
    create(custom_objects, namespace, evaluation_manifest("shown", tasks=4))
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = EvaluationStatus(
        phase=Phase.SUCCEEDED,
        observed_generation=1,
        conditions=[
            Condition(
                type=ConditionType.SUCCEEDED,
                status="True",
                reason=Reason.ALL_TASKS_SUCCEEDED,
                message="5 of 5 tasks succeeded",
                last_transition_time=now,
                observed_generation=1,
            )
        ],
        start_time=now,
        completion_time=now,
        tasks=[TaskStatus(step=Step.EVALUATE, index=0, phase=TaskPhase.SUCCEEDED, exit_code=0, attempts=1)],
        task_counts=TaskCounts(total=5, succeeded=5),
        cost=Cost(estimated_max="40.00", accrued="1.27"),
        results=Results(summary={"accuracy": 0.99123, "macro avg/f1": 0.99, "model": "cnn"}, records=10000),
    )
    written = custom_objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, EVALUATION_PLURAL, "shown", {"status": status.to_api()}
    )
    assert EvaluationStatus.model_validate(written["status"]) == status

    table = kubectl("get", "evals", "-n", namespace, "shown")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "POOL", "PHASE", "TASKS", "RESULT", "COST", "AGE"]
    assert row.split()[:6] == ["shown", "some-pool", "Succeeded", "5/5", "accuracy=0.9912", "1.27"]
    waited = kubectl("wait", "-n", namespace, "--for=condition=Succeeded", "--timeout=10s", "eval/shown")
    assert waited.returncode == 0, waited.stderr


@pytest.mark.usefixtures("assay_crds")
def test_names_short_names_and_category(kubectl: Kubectl, namespace: str) -> None:
    created = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(evaluation_manifest("named")))
    assert created.returncode == 0, created.stderr
    for resource in ("evaluations", "evaluation", "eval", "evals", "assay"):
        listed = kubectl("get", resource, "-n", namespace, "-o", "name")
        assert listed.returncode == 0, listed.stderr
        assert "evaluation.assay.dev/named" in listed.stdout, resource
    for resource in ("resourcepools", "pool", "pools"):
        assert kubectl("get", resource).returncode == 0, resource


@pytest.mark.usefixtures("assay_crds")
def test_kubectl_explain_teaches_the_fields(kubectl: Kubectl) -> None:
    model = kubectl("explain", "evaluation.spec.model")
    assert model.returncode == 0, model.stderr
    assert "The model under evaluation" in model.stdout
    assert "pvc://<claim>/<path>" in model.stdout
    tasks = kubectl("explain", "evaluation.spec.tasks")
    assert "shard of the dataset" in tasks.stdout
    pool = kubectl("explain", "resourcepool.spec.quota")
    assert "waits in phase Queued" in " ".join(pool.stdout.split())


@pytest.mark.usefixtures("assay_crds")
def test_pool_bounds_and_auto_release_are_checked(
    custom_objects: client.CustomObjectsApi, pool_name: str
) -> None:
    def create_pool(spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ResourcePool", "metadata": {"name": pool_name}}
        return custom_objects.create_cluster_custom_object(
            GROUP, VERSION, POOL_PLURAL, {**body, "spec": spec}
        )

    message = rejection(
        lambda: create_pool(
            {
                "resources": [
                    {"name": "nvidia.com/gpu", "default": 9, "max": "8"},
                    {"name": "memory", "min": "2Gi", "max": "1Gi"},
                    {"name": "cpu", "min": "2", "default": "500m"},
                ],
                "autoRelease": {"defaultSeconds": 7200, "maxSeconds": 3600},
            }
        )
    )
    assert "default 9 of nvidia.com/gpu must not exceed its max 8" in message
    assert "min 2Gi of memory must not exceed its max 1Gi" in message
    assert "min 2 of cpu must not exceed its default 500m" in message
    assert "autoRelease.defaultSeconds must not exceed autoRelease.maxSeconds" in message
    # Kueue mode: the LocalQueue is required, Kueue's fields need Kueue, and Assay's quota is not Kueue's.
    assert "admission.queue Kueue needs admission.localQueueName" in rejection(
        lambda: create_pool({"admission": {"queue": "Kueue"}})
    )
    assert "are Kueue's: set admission.queue: Kueue" in rejection(
        lambda: create_pool({"admission": {"localQueueName": "team-a"}})
    )
    assert "has its quota in Kueue's ClusterQueue: remove spec.quota" in rejection(
        lambda: create_pool(
            {"quota": {"nvidia.com/gpu": 8}, "admission": {"queue": "Kueue", "localQueueName": "team-a"}}
        )
    )

    try:
        stored = create_pool(
            {
                "nodeSelector": {"gpu.example.com/type": "a100-80g"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "resources": [{"name": "nvidia.com/gpu", "default": 1, "min": "0", "max": 8}],
                "quota": {"nvidia.com/gpu": 16},
                "pricing": {"perHour": {"nvidia.com/gpu": "2.50"}},
                "autoRelease": {"maxSeconds": 86400},
            }
        )
        pool = ResourcePool.model_validate(stored)
        assert pool.spec.auto_release is not None and pool.spec.auto_release.default_seconds == 3600
        assert pool.spec.pricing is not None and pool.spec.pricing.currency == "USD"
        assert pool.spec.tolerations[0].operator == "Exists"
    finally:
        wait_until(
            lambda: _delete_pool(custom_objects, pool_name),
            timeout=10,
            what=f"ResourcePool {pool_name} to be deleted",
        )


def _delete_pool(custom_objects: client.CustomObjectsApi, name: str) -> bool:
    try:
        custom_objects.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
    except ApiException as exc:
        return exc.status == 404
    return True
