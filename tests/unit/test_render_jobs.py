"""The Jobs, Service and Secret rendered from an Evaluation and its pool (pure; no cluster)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from assay.api import Evaluation, ResourcePool
from assay.contract import (
    ENV_DEBUG_PASSWORD_FILE,
    ENV_STEP,
    ENV_TASK_COUNT,
    ENV_TASK_INDEX,
    TASK_CONTAINER,
    Step,
    TaskEnvironment,
)
from assay.render import (
    RenderOptions,
    debug_secret_for,
    debug_service_for,
    job_for,
    retention_of,
)

POOL: dict[str, Any] = {
    "apiVersion": "assay.dev/v1alpha1",
    "kind": "ResourcePool",
    "metadata": {"name": "a100"},
    "spec": {
        "nodeSelector": {"gpu.example.com/type": "a100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "resources": [
            {"name": "nvidia.com/gpu", "default": "1", "max": "8"},
            {"name": "cpu", "default": "2", "max": "32"},
            {"name": "memory", "default": "8Gi"},
        ],
        "quota": {"nvidia.com/gpu": "16"},
        "priorityClassName": "eval-batch",
        "annotations": {"cloud.example.com/spot": "true"},
        "autoRelease": {"defaultSeconds": 1800},
    },
}


def evaluation(**spec: Any) -> Evaluation:
    body = {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "Evaluation",
        "metadata": {"name": "mnist", "namespace": "team-a", "uid": "uid-1", "generation": 1},
        "spec": {
            "pool": "a100",
            "model": {"name": "mnist-cnn", "version": "v3", "uri": "pvc://models/mnist/v3"},
            "handler": "mnist_eval:Evaluator",
            "dataset": {"name": "mnist-test", "version": "v1", "uri": "pvc://datasets/mnist/v1"},
            "runtime": {"image": "registry.example.com/assay-runtime:2.4"},
            "tasks": 4,
            "output": {"pvc": "results"},
            **spec,
        },
    }
    return Evaluation.model_validate(body)


@pytest.fixture
def pool() -> ResourcePool:
    return ResourcePool.model_validate(POOL)


def container_of(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_of(job)["env"]}


def test_predict_job_is_indexed_with_one_index_per_task(pool: ResourcePool) -> None:
    job = job_for(evaluation(backoffLimitPerTask=2), pool, Step.PREDICT, RenderOptions())
    assert job["metadata"]["name"] == "mnist-predict"
    assert job["metadata"]["namespace"] == "team-a"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimitPerIndex"] == 2
    assert spec["suspend"] is False
    assert job["metadata"]["labels"]["assay.dev/evaluation"] == "mnist"
    assert spec["template"]["metadata"]["labels"] == {
        "assay.dev/evaluation": "mnist",
        "assay.dev/step": "predict",
        "app.kubernetes.io/managed-by": "assay-operator",
    }
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "Evaluation",
        "name": "mnist",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_pool_placement_is_copied_onto_pods(pool: ResourcePool) -> None:
    job = job_for(evaluation(), pool, Step.PREDICT, RenderOptions())
    template = job["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {"gpu.example.com/type": "a100"}
    assert template["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert template["spec"]["priorityClassName"] == "eval-batch"
    assert template["metadata"]["annotations"] == {"cloud.example.com/spot": "true"}
    assert template["spec"]["restartPolicy"] == "Never"


def test_resources_take_pool_defaults_and_gpu_limit_equals_request(pool: ResourcePool) -> None:
    job = job_for(
        evaluation(resources={"nvidia.com/gpu": "2", "memory": "16Gi"}), pool, Step.PREDICT, RenderOptions()
    )
    resources = container_of(job)["resources"]
    assert resources["requests"] == {"nvidia.com/gpu": "2", "cpu": "2", "memory": "16Gi"}
    assert resources["limits"] == {"nvidia.com/gpu": "2"}
    assert "NVIDIA_VISIBLE_DEVICES" not in env_of(job)


def test_tasks_without_gpus_see_none(pool: ResourcePool) -> None:
    job = job_for(evaluation(resources={"nvidia.com/gpu": "0"}), pool, Step.PREDICT, RenderOptions())
    assert "nvidia.com/gpu" not in container_of(job)["resources"]["requests"]
    assert env_of(job)["NVIDIA_VISIBLE_DEVICES"] == ""


def test_environment_follows_the_contract(pool: ResourcePool) -> None:
    job = job_for(evaluation(batchSize=32), pool, Step.PREDICT, RenderOptions())
    env = env_of(job)
    assert env[ENV_TASK_INDEX] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }
    # What the runner parses back (the index as Kubernetes fills it in) is what the spec says.
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    parsed = TaskEnvironment.from_env({**plain, ENV_TASK_INDEX: "3"})
    assert parsed.step == Step.PREDICT
    assert (parsed.task_index, parsed.task_count) == (3, 4)
    assert parsed.model_uri == "pvc://models/mnist/v3"
    assert parsed.handler == "mnist_eval:Evaluator"
    assert parsed.output_uri == "pvc://results/team-a/mnist"
    assert parsed.batch_size == 32
    assert parsed.evaluation == "team-a/mnist"
    assert ENV_DEBUG_PASSWORD_FILE not in env
    assert not any(v["name"] == "debug-password" for v in job["spec"]["template"]["spec"]["volumes"])


def test_pvc_locations_are_mounted_where_the_contract_says(pool: ResourcePool) -> None:
    job = job_for(evaluation(), pool, Step.PREDICT, RenderOptions(pvc_root="/assay/volumes"))
    volumes = {v["persistentVolumeClaim"]["claimName"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m for m in container_of(job)["volumeMounts"]}
    assert set(volumes) == {"models", "datasets", "results"}
    by_claim = {claim: mounts[v["name"]] for claim, v in volumes.items()}
    assert by_claim["models"] == {
        "name": volumes["models"]["name"],
        "mountPath": "/assay/volumes/models",
        "readOnly": True,
    }
    assert by_claim["results"]["readOnly"] is False
    assert by_claim["datasets"]["mountPath"] == "/assay/volumes/datasets"


def test_termination_message_and_container_name(pool: ResourcePool) -> None:
    container = container_of(job_for(evaluation(), pool, Step.EVALUATE, RenderOptions()))
    assert container["name"] == TASK_CONTAINER
    assert container["terminationMessagePolicy"] == "File"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["image"] == "registry.example.com/assay-runtime:2.4"


def test_evaluate_job_runs_one_task_over_all_shards(pool: ResourcePool) -> None:
    job = job_for(evaluation(), pool, Step.EVALUATE, RenderOptions())
    assert job["metadata"]["name"] == "mnist-evaluate"
    assert job["spec"]["completions"] == 1
    env = env_of(job)
    assert env[ENV_STEP] == "evaluate"
    assert env[ENV_TASK_COUNT] == "4"


def test_single_task_runs_everything_in_one_job(pool: ResourcePool) -> None:
    single = evaluation(tasks=1, output=None)
    job = job_for(single, pool, Step.ALL, RenderOptions())
    assert job["metadata"]["name"] == "mnist-evaluate"
    assert job["spec"]["completions"] == 1
    assert env_of(job)[ENV_STEP] == "all"


def test_auto_release_backstop_and_retention(pool: ResourcePool) -> None:
    options = RenderOptions(job_retention_seconds=600, job_deadline_grace_seconds=30)
    assert job_for(evaluation(), pool, Step.PREDICT, options)["spec"]["activeDeadlineSeconds"] == 1830
    assert (
        job_for(evaluation(autoReleaseSeconds=120), pool, Step.PREDICT, options)["spec"][
            "activeDeadlineSeconds"
        ]
        == 150
    )
    never = job_for(evaluation(autoReleaseSeconds=0), pool, Step.PREDICT, options)
    assert "activeDeadlineSeconds" not in never["spec"]
    # A retention of 10 minutes or more is rendered into the Job: no patch once the outcome is recorded.
    assert never["spec"]["ttlSecondsAfterFinished"] == 600
    assert retention_of(never, options) is None


def test_a_short_retention_is_set_only_once_the_outcome_is_recorded(pool: ResourcePool) -> None:
    """A Job must never be deleted before its outcome is read: below 10 minutes the operator patches the
    retention in after recording the outcome."""
    options = RenderOptions(job_retention_seconds=599)
    job = job_for(evaluation(), pool, Step.PREDICT, options)
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert retention_of(job, options) == {"ttlSecondsAfterFinished": 599}
    assert retention_of({"spec": {"ttlSecondsAfterFinished": 599}}, options) is None


def test_suspend_is_rendered_into_the_job(pool: ResourcePool) -> None:
    assert job_for(evaluation(suspend=True), pool, Step.PREDICT, RenderOptions())["spec"]["suspend"] is True


def test_default_runtime_image_when_the_spec_names_none(pool: ResourcePool) -> None:
    job = job_for(evaluation(runtime=None), pool, Step.PREDICT, RenderOptions(default_runtime_image="rt:1"))
    assert container_of(job)["image"] == "rt:1"


def password_volume_of(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod's Secret volume and the container's mount of it (exactly one of each)."""
    (volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    (mount,) = [m for m in container_of(job)["volumeMounts"] if m["name"] == volume["name"]]
    return volume, mount


@pytest.mark.parametrize("step", list(Step))
def test_debug_password_is_a_file_of_a_secret_volume_never_a_variable(pool: ResourcePool, step: Step) -> None:
    generated = evaluation(debug={"enabled": True})
    job = job_for(generated, pool, step, RenderOptions())
    volume, mount = password_volume_of(job)
    # Only the password's key, read-only, and no other variable than the file's path names it.
    assert volume["secret"]["secretName"] == "mnist-debug"
    assert volume["secret"]["items"] == [{"key": "password", "path": "password"}]
    assert volume["secret"]["defaultMode"] == 0o444
    assert volume["secret"]["optional"] is True
    assert mount == {"name": volume["name"], "mountPath": "/assay/debug", "readOnly": True}
    env = env_of(job)
    assert env[ENV_DEBUG_PASSWORD_FILE] == "/assay/debug/password"
    assert not [e for e in container_of(job)["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    # The runner finds the file where the mount puts it.
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    parsed = TaskEnvironment.from_env({**plain, ENV_TASK_INDEX: "0"})
    assert parsed.debug_password_file == "/assay/debug/password"

    given = evaluation(debug={"enabled": True, "passwordSecretRef": {"name": "mine", "key": "pw"}})
    job = job_for(given, pool, step, RenderOptions(debug_port=8123))
    volume, _ = password_volume_of(job)
    assert volume["secret"]["secretName"] == "mine"
    assert volume["secret"]["items"] == [{"key": "pw", "path": "password"}]
    assert container_of(job)["ports"] == [{"name": "debug", "containerPort": 8123, "protocol": "TCP"}]


def test_debug_service_and_secret(pool: ResourcePool) -> None:
    ev = evaluation(debug={"enabled": True})
    service = debug_service_for(ev, RenderOptions(debug_port=8000))
    assert service["metadata"]["name"] == "mnist-debug"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"assay.dev/evaluation": "mnist"}
    assert service["spec"]["ports"][0]["port"] == 8000
    secret = debug_secret_for(ev, "s3cret-value")
    assert secret["metadata"]["name"] == "mnist-debug"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert base64.b64decode(secret["data"]["password"]).decode() == "s3cret-value"


@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize(
    "debug", [{"enabled": True}, {"enabled": True, "passwordSecretRef": {"name": "mine"}}]
)
def test_a_password_the_renderer_is_given_stays_out_of_the_job(
    pool: ResourcePool, step: Step, debug: dict[str, Any]
) -> None:
    """The renderer reads the whole Evaluation: one that carries the password (here in an annotation, as
    `kubectl apply` leaves a copy of what was applied) must still give a Job that names the Secret only."""
    password = "s3cret-value-4f2a9c"
    body = evaluation(debug=debug).model_dump(by_alias=True, exclude_none=True, mode="json")
    body["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": password}
    ev = Evaluation.model_validate(body)
    job = job_for(ev, pool, step, RenderOptions())
    service = debug_service_for(ev, RenderOptions())
    for rendered in (job, service):
        text = json.dumps(rendered)
        assert password not in text
        assert base64.b64encode(password.encode()).decode() not in text
    volume, _ = password_volume_of(job)
    assert set(volume["secret"]) == {"secretName", "items", "defaultMode", "optional"}


def test_rendering_is_deterministic(pool: ResourcePool) -> None:
    assert job_for(evaluation(), pool, Step.PREDICT, RenderOptions()) == job_for(
        evaluation(), pool, Step.PREDICT, RenderOptions()
    )
