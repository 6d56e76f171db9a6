"""The Jobs of an Evaluation, as API objects (plain dicts), from the Evaluation and its pool. No I/O.

One Job per step of the layout (:func:`assay.contract.steps_for`), each an Indexed Job with one index per task
of its step (per-index retries):

* tasks > 1: ``<eval>-predict``, one index per shard, then ``<eval>-evaluate`` with step ``evaluate`` once
  every shard succeeded;
* tasks == 1: only ``<eval>-evaluate``, whose single pod runs step ``all``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay.api import API_VERSION, Evaluation, ResourcePool
from assay.api.evaluation import EVALUATION_KIND
from assay.api.resources import effective_auto_release_seconds, task_resources
from assay.contract import (
    DEBUG_PASSWORD_DIR,
    DEBUG_PASSWORD_FILE,
    DEBUG_PASSWORD_FILE_NAME,
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEBUG_PORT,
    DEFAULT_PVC_ROOT,
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ENV_TASK_INDEX,
    TASK_CONTAINER,
    Step,
    TaskEnvironment,
    pvc_claim,
    step_task_count,
)
from assay.render.kueue import hand_to_kueue
from assay.render.names import (
    DEBUG_SECRET_KEY,
    JOB_COMPLETION_INDEX,
    annotations_for,
    debug_name,
    job_name,
    labels_for,
)

# Hides every GPU from a task that asked for none (the NVIDIA runtime otherwise may expose all of them).
NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"


# Task pods meet the `restricted` Pod Security Standard, so they run in namespaces that enforce it. GPUs need
# nothing beyond it: the device plugin hands the devices to the container. The runtime image must run as a
# numeric non-root user (the Dockerfile's runner target runs as 65532), which the kubelet checks.
TASK_POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
TASK_CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


# A retention at least this long is set on a Job when it is created, saving a patch per Job: Kubernetes then
# deletes a finished Job that long after it finished, and the operator, which records an outcome within
# seconds, would have to be away for longer than that for a Job to go unread (its task would then run again).
# A shorter retention is set only once the outcome is recorded (retention_of).
RETENTION_AT_CREATION_MIN_SECONDS = 600

# Pods with condition DisruptionTarget (eviction, preemption, node lost, taint manager) are ignored.
DISRUPTIONS_ARE_NOT_FAILURES: dict[str, Any] = {
    "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
}


@dataclass(frozen=True)
class RenderOptions:
    """Operator-wide choices that shape what is rendered (from the operator settings)."""

    runner_command: tuple[str, ...] = ("python", "-m", "assay.runner")
    default_runtime_image: str = "assay-runtime:latest"
    pvc_root: str = DEFAULT_PVC_ROOT
    debug_port: int = DEFAULT_DEBUG_PORT
    job_retention_seconds: int = 3600
    job_deadline_grace_seconds: int = 60


def owner_reference(evaluation: Evaluation) -> dict[str, Any]:
    """Makes the Evaluation own an object: deleting the Evaluation deletes it (garbage collector)."""
    return {
        "apiVersion": API_VERSION,
        "kind": EVALUATION_KIND,
        "name": evaluation.name,
        "uid": evaluation.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def runtime_image(evaluation: Evaluation, options: RenderOptions) -> str:
    """The Evaluation's runtime image, else the operator's default."""
    runtime = evaluation.spec.runtime
    return (runtime.image if runtime is not None else None) or options.default_runtime_image


def debug_password_secret(evaluation: Evaluation) -> tuple[str, str] | None:
    """(Secret name, key) the debug password comes from: the user's, else the generated ``<eval>-debug``."""
    debug = evaluation.spec.debug
    if debug is None or not debug.enabled:
        return None
    if debug.password_secret_ref is not None:
        return debug.password_secret_ref.name, debug.password_secret_ref.key
    return debug_name(evaluation.name), DEBUG_SECRET_KEY


def task_environment(evaluation: Evaluation, step: Step, options: RenderOptions) -> TaskEnvironment:
    """The contract values for every task of ``step`` (the index comes from the pod, not from here).

    ``assay run --local`` starts its runner processes with these values too (locations made local)."""
    spec = evaluation.spec
    debug = spec.debug is not None and spec.debug.enabled
    return TaskEnvironment(
        step=step,
        model_uri=spec.model.uri,
        handler=spec.handler,
        dataset_uri=spec.dataset.uri,
        task_count=spec.tasks,
        output_uri=evaluation.output_uri,
        evaluation=f"{evaluation.namespace}/{evaluation.name}",
        evaluation_uid=evaluation.metadata.uid or "",
        model_name=spec.model.name,
        model_version=spec.model.version or "",
        dataset_name=spec.dataset.name,
        dataset_version=spec.dataset.version or "",
        debug=debug,
        debug_port=options.debug_port,
        debug_password_file=DEBUG_PASSWORD_FILE if debug else None,
        termination_message_path=DEFAULT_TERMINATION_MESSAGE_PATH,
        pvc_root=options.pvc_root,
        batch_size=spec.batch_size or DEFAULT_BATCH_SIZE,
    )


def _volumes(
    evaluation: Evaluation, options: RenderOptions
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One volume per PersistentVolumeClaim named by a pvc:// location, mounted at ``<pvcRoot>/<claim>``.

    Model and dataset claims are read-only unless the output goes to the same claim.
    """
    spec = evaluation.spec
    writable: dict[str, bool] = {}
    for uri in (spec.model.uri, spec.dataset.uri):
        claim = pvc_claim(uri)
        if claim is not None:
            writable.setdefault(claim, False)
    if spec.output is not None:
        writable[spec.output.pvc] = True
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for number, (claim, rw) in enumerate(writable.items()):
        volume = f"pvc-{number}"
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": not rw}})
        mounts.append(
            {"name": volume, "mountPath": f"{options.pvc_root.rstrip('/')}/{claim}", "readOnly": not rw}
        )
    return volumes, mounts


def _env(
    evaluation: Evaluation, pool: ResourcePool | None, step: Step, options: RenderOptions
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": name, "value": value}
        for name, value in task_environment(evaluation, step, options).to_env().items()
    ]
    # Per-pod value: the completion index Kubernetes puts on each pod of an Indexed Job.
    env.append(
        {
            "name": ENV_TASK_INDEX,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{JOB_COMPLETION_INDEX}']"}},
        }
    )
    if task_resources(evaluation.spec, pool).gpus == 0:
        env.append({"name": NVIDIA_VISIBLE_DEVICES, "value": ""})
    return env


# The password file's mode. Not 0400: a Secret volume's files belong to root (the kubelet changes their group
# only for a pod fsGroup, which would also re-own the user's claims), and the task runs as a non-root user,
# who could not read it. Every process in the pod runs as that one user, so a tighter mode would hide the
# file from no one.
DEBUG_PASSWORD_FILE_MODE = 0o444


def _debug_password_volume(evaluation: Evaluation) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The debug password's Secret volume and its read-only mount, holding only the password's key at
    :data:`~assay.contract.DEBUG_PASSWORD_FILE`; None without debug mode.

    A file, not an environment variable: a variable stays in /proc/<pid>/environ as long as the process
    runs. Only a reference: the password never appears in the Job or pod spec. Optional, so that a Secret or
    key deleted since admission gives a task failing with ``DebugPasswordMissing`` instead of a pod that
    never starts."""
    secret = debug_password_secret(evaluation)
    if secret is None:
        return None
    name, key = secret
    volume = {
        "name": "debug-password",
        "secret": {
            "secretName": name,
            "items": [{"key": key, "path": DEBUG_PASSWORD_FILE_NAME}],
            "defaultMode": DEBUG_PASSWORD_FILE_MODE,
            "optional": True,
        },
    }
    return volume, {"name": "debug-password", "mountPath": DEBUG_PASSWORD_DIR, "readOnly": True}


def retention_of(job: Mapping[str, Any], options: RenderOptions) -> dict[str, Any] | None:
    """The spec change that hands a finished Job, whose outcome is recorded, to Kubernetes' TTL controller:
    deleted (with its pods and logs) ``job_retention_seconds`` after it finished. None when it has it
    (a long retention is rendered into the Job at creation, RETENTION_AT_CREATION_MIN_SECONDS)."""
    wanted = options.job_retention_seconds
    return (
        None
        if job.get("spec", {}).get("ttlSecondsAfterFinished") == wanted
        else {"ttlSecondsAfterFinished": wanted}
    )


def job_deadline_seconds(
    evaluation: Evaluation, pool: ResourcePool | None, options: RenderOptions
) -> int | None:
    """The Jobs' activeDeadlineSeconds: auto-release plus a grace period, none when never released.

    Only a backstop for an operator that is down (the Job's clock starts when the Job does, before the
    first task): the operator releases at ``expiresAt`` itself. It follows changes of autoReleaseSeconds.
    """
    release = effective_auto_release_seconds(evaluation.spec, pool)
    return release + options.job_deadline_grace_seconds if release > 0 else None


def job_for(
    evaluation: Evaluation,
    pool: ResourcePool | None,
    step: Step,
    options: RenderOptions,
) -> dict[str, Any]:
    """The Job running ``step``: ``tasks`` indexes for predict, one index for evaluate or all."""
    spec = evaluation.spec
    completions = step_task_count(step, spec.tasks)
    labels = labels_for(evaluation.name, step)
    volumes, mounts = _volumes(evaluation, options)
    if (password := _debug_password_volume(evaluation)) is not None:
        volumes.append(password[0])
        mounts.append(password[1])
    container: dict[str, Any] = {
        "name": TASK_CONTAINER,
        "image": runtime_image(evaluation, options),
        "env": _env(evaluation, pool, step, options),
        "resources": task_resources(spec, pool).to_api(),
        "terminationMessagePath": DEFAULT_TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "securityContext": copy.deepcopy(TASK_CONTAINER_SECURITY_CONTEXT),
    }
    if options.runner_command:
        container["command"] = list(options.runner_command)
    if mounts:
        container["volumeMounts"] = mounts
    if debug_password_secret(evaluation) is not None:
        container["ports"] = [{"name": "debug", "containerPort": options.debug_port, "protocol": "TCP"}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        # Task pods never talk to the Kubernetes API.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": copy.deepcopy(TASK_POD_SECURITY_CONTEXT),
    }
    if volumes:
        pod_spec["volumes"] = volumes
    if pool is not None:
        if pool.spec.node_selector:
            pod_spec["nodeSelector"] = dict(pool.spec.node_selector)
        if pool.spec.tolerations:
            pod_spec["tolerations"] = [t.to_api() for t in pool.spec.tolerations]
        if pool.spec.priority_class_name:
            pod_spec["priorityClassName"] = pool.spec.priority_class_name
    pod_metadata: dict[str, Any] = {"labels": labels}
    pod_annotations = {
        **(pool.spec.annotations if pool is not None else {}),
        **annotations_for(evaluation.name),
    }
    if pod_annotations:
        pod_metadata["annotations"] = pod_annotations

    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": completions,
        "parallelism": completions,
        "backoffLimitPerIndex": spec.backoff_limit_per_task,
        # One task failing past its retries fails the Evaluation: stop the other tasks at once.
        "maxFailedIndexes": 0,
        # A pod evicted, preempted or lost with its node is not the task's failure: retry it without using
        # up backoffLimitPerTask.
        "podFailurePolicy": copy.deepcopy(DISRUPTIONS_ARE_NOT_FAILURES),
        "suspend": spec.suspend,
        "template": {"metadata": pod_metadata, "spec": pod_spec},
    }
    if options.job_retention_seconds >= RETENTION_AT_CREATION_MIN_SECONDS:
        job_spec["ttlSecondsAfterFinished"] = options.job_retention_seconds
    deadline = job_deadline_seconds(evaluation, pool, options)
    if deadline is not None:
        job_spec["activeDeadlineSeconds"] = deadline
    metadata: dict[str, Any] = {
        "name": job_name(evaluation.name, step, spec.tasks),
        "namespace": evaluation.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(evaluation)],
    }
    if annotations := annotations_for(evaluation.name):
        metadata["annotations"] = annotations
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}
    return hand_to_kueue(job, evaluation, pool) if pool is not None and pool.uses_kueue else job
