"""``assay run --local`` gives its runner processes the environment the controller renders into pods.

Only what must differ on a laptop differs: local paths for the claims, the run's own output directory and
termination-message files, no uid and no debug server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.api import Evaluation, ResourcePool
from assay.cli.run import plan_from_manifest
from assay.contract import (
    ENV_BATCH_SIZE,
    ENV_DATASET_URI,
    ENV_DEBUG,
    ENV_DEBUG_PASSWORD_FILE,
    ENV_EVALUATION_UID,
    ENV_MODEL_URI,
    ENV_OUTPUT_URI,
    ENV_TASK_COUNT,
    ENV_TASK_INDEX,
    ENV_TERMINATION_MESSAGE_PATH,
    Step,
)
from assay.render import RenderOptions, job_for
from assay.runner.local import local_task_environment

MANIFEST: dict[str, Any] = {
    "apiVersion": "assay.dev/v1alpha1",
    "kind": "Evaluation",
    "metadata": {
        "name": "mnist",
        "namespace": "team-a",
        "uid": "uid-from-a-cluster",
        "annotations": {"assay.dev/local-volumes": "models=m,datasets=d"},
    },
    "spec": {
        "pool": "a100",
        "model": {"name": "mnist-cnn", "version": "v3", "uri": "pvc://models/mnist/v3"},
        "handler": "mnist_eval:Evaluator",
        "dataset": {"name": "mnist-test", "version": "v1", "uri": "pvc://datasets/mnist/v1"},
        "tasks": 3,
        "batchSize": 16,
        "output": {"pvc": "results"},
        "debug": {"enabled": True},
    },
}
POOL = ResourcePool.model_validate(
    {"apiVersion": "assay.dev/v1alpha1", "kind": "ResourcePool", "metadata": {"name": "a100"}, "spec": {}}
)
LOCAL_ONLY = {ENV_MODEL_URI, ENV_DATASET_URI, ENV_OUTPUT_URI, ENV_TERMINATION_MESSAGE_PATH}


def pod_values(step: Step) -> dict[str, str]:
    """The contract's plain values in the task container, as the controller renders them (without what
    only a node needs, such as NVIDIA_VISIBLE_DEVICES)."""
    job = job_for(Evaluation.model_validate(MANIFEST), POOL, step, RenderOptions())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {
        e["name"]: e["value"] for e in container["env"] if "value" in e and e["name"].startswith("ASSAY_")
    }


def test_local_tasks_get_the_pod_environment_with_local_paths(tmp_path: Path) -> None:
    plan = plan_from_manifest(MANIFEST, tmp_path, [], None, None)
    out = tmp_path / "run"
    for step, index in [(Step.PREDICT, 2), (Step.EVALUATE, 0)]:
        local = local_task_environment(plan, step, index, out)
        pod = pod_values(step)
        differing = {k for k in pod.keys() | local.keys() if pod.get(k) != local.get(k)}
        assert differing == LOCAL_ONLY | {
            ENV_TASK_INDEX,
            ENV_EVALUATION_UID,
            ENV_DEBUG,
            ENV_DEBUG_PASSWORD_FILE,
        }
        assert local[ENV_MODEL_URI] == str(tmp_path / "m" / "mnist" / "v3")
        assert local[ENV_DATASET_URI] == str(tmp_path / "d" / "mnist" / "v1")
        assert local[ENV_OUTPUT_URI] == str(out)
        assert local[ENV_TERMINATION_MESSAGE_PATH] == str(
            out / "logs" / f"{step.value}-{index}.termination-log"
        )
        assert (local[ENV_TASK_INDEX], local[ENV_EVALUATION_UID], local[ENV_DEBUG]) == (str(index), "", "0")
        assert ENV_DEBUG_PASSWORD_FILE not in local  # the pod's Secret volume has no local counterpart


def test_command_line_tasks_and_batch_size_override_the_manifest(tmp_path: Path) -> None:
    plan = plan_from_manifest(MANIFEST, tmp_path, [], 5, 4)
    assert plan.tasks == 5
    local = local_task_environment(plan, Step.PREDICT, 0, tmp_path)
    assert (local[ENV_TASK_COUNT], local[ENV_BATCH_SIZE]) == ("5", "4")


def test_a_manifest_without_name_or_namespace_runs_as_default_evaluation(tmp_path: Path) -> None:
    bare = {**MANIFEST, "metadata": {"annotations": MANIFEST["metadata"]["annotations"]}}
    plan = plan_from_manifest(bare, tmp_path, [], None, None)
    assert plan.name == "evaluation"
    assert plan.environment.evaluation == "default/evaluation"
