"""Evaluation, pool and pod fixtures for the CLI and SDK unit tests, as raw API dicts."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from assay.api import Evaluation, ResourcePool

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

BASE: dict[str, Any] = {
    "apiVersion": "assay.dev/v1alpha1",
    "kind": "Evaluation",
    "metadata": {
        "name": "cnn-v3",
        "namespace": "team-a",
        "uid": "0b5d6a34-1111-2222-3333-444455556666",
        "creationTimestamp": "2026-11-26T11:00:00Z",
        "resourceVersion": "42",
    },
    "spec": {
        "pool": "a100",
        "model": {"name": "mnist-cnn", "version": "v3", "uri": "pvc://models/mnist-cnn"},
        "handler": "mnist_eval:MNISTEvaluator",
        "dataset": {"name": "mnist-test", "version": "v1", "uri": "pvc://datasets/mnist"},
        "runtime": {"name": "pytorch", "version": "2.4", "image": "runtime:2.4"},
        "tasks": 2,
        "output": {"pvc": "eval-results"},
    },
    "status": {
        "phase": "Succeeded",
        "startTime": "2026-11-26T11:01:00Z",
        "completionTime": "2026-11-26T11:03:30Z",
        "taskCounts": {"total": 3, "succeeded": 3},
        "cost": {"currency": "USD", "estimatedMax": "40.00", "accrued": "1.27"},
        "results": {
            "summary": {"accuracy": 0.9912, "macro avg/f1": 0.991, "loss": 0.031},
            "records": 10000,
            "location": "pvc://eval-results/team-a/cnn-v3/",
        },
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "AllTasksSucceeded",
                "message": "3 of 3 tasks succeeded",
                "lastTransitionTime": "2026-11-26T11:03:30Z",
            }
        ],
        "tasks": [
            {"step": "predict", "index": 0, "phase": "Succeeded", "pod": "cnn-v3-predict-0-a", "attempts": 1},
            {
                "step": "predict",
                "index": 1,
                "phase": "Succeeded",
                "pod": "cnn-v3-predict-1-b",
                "attempts": 2,
                "startTime": "2026-11-26T11:01:00Z",
                "completionTime": "2026-11-26T11:02:40Z",
                "exitCode": 0,
            },
            {
                "step": "evaluate",
                "index": 0,
                "phase": "Succeeded",
                "pod": "cnn-v3-evaluate-0-c",
                "attempts": 1,
            },
        ],
    },
}


def raw_evaluation(name: str = "cnn-v3", **changes: Any) -> dict[str, Any]:
    """A raw Evaluation; ``changes`` replace top-level parts of ``status`` (``summary=`` the metrics,
    ``phase=``, ``created=`` the creation timestamp)."""
    raw = copy.deepcopy(BASE)
    raw["metadata"]["name"] = name
    raw["metadata"]["uid"] = f"uid-{name}"
    if "created" in changes:
        raw["metadata"]["creationTimestamp"] = changes.pop("created")
    if "summary" in changes:
        raw["status"]["results"]["summary"] = changes.pop("summary")
    if "duration_end" in changes:
        raw["status"]["completionTime"] = changes.pop("duration_end")
    raw["status"].update(changes)
    return raw


def evaluation(name: str = "cnn-v3", **changes: Any) -> Evaluation:
    return Evaluation.model_validate(raw_evaluation(name, **changes))


def running(name: str) -> Evaluation:
    raw = raw_evaluation(
        name, phase="Running", summary={}, taskCounts={"total": 3, "succeeded": 1, "running": 2}
    )
    del raw["status"]["completionTime"]
    raw["status"]["results"] = None
    raw["status"]["debug"] = {"service": f"{name}-debug", "port": 8000, "passwordSecret": f"{name}-debug"}
    return Evaluation.model_validate(raw)


def pool() -> ResourcePool:
    return ResourcePool.model_validate(
        {
            "apiVersion": "assay.dev/v1alpha1",
            "kind": "ResourcePool",
            "metadata": {"name": "a100"},
            "spec": {
                "description": "A100 nodes",
                "quota": {"nvidia.com/gpu": "16"},
                "pricing": {"currency": "USD", "perHour": {"nvidia.com/gpu": "2.50"}},
            },
            "status": {
                "capacity": {"nvidia.com/gpu": "24"},
                "inUse": {"nvidia.com/gpu": "4"},
                "runningEvaluations": 2,
                "queuedEvaluations": 3,
                "nodes": 3,
            },
        }
    )


def pod(
    name: str,
    step: str,
    index: int,
    created: str,
    *,
    phase: str = "Succeeded",
    exit_code: int | None = 0,
    reason: str | None = "Completed",
    index_in_label: bool = False,
) -> dict[str, Any]:
    """A task pod as the API returns it (labels of the operator, the Job's completion index)."""
    metadata: dict[str, Any] = {
        "name": name,
        "creationTimestamp": created,
        "labels": {"assay.dev/evaluation": "cnn-v3", "assay.dev/step": step},
        "annotations": {},
    }
    if index_in_label:
        metadata["labels"]["batch.kubernetes.io/job-completion-index"] = str(index)
    else:
        metadata["annotations"]["batch.kubernetes.io/job-completion-index"] = str(index)
    container_status: dict[str, Any] = {"name": "task", "state": {}}
    if exit_code is not None:
        container_status["state"]["terminated"] = {
            "exitCode": exit_code,
            "reason": reason,
            "finishedAt": "2026-11-26T11:02:00Z",
            "message": '{"reason": "HandlerFailed"}' if exit_code else "",
        }
    return {
        "metadata": metadata,
        "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "task"}]},
        "status": {
            "phase": phase,
            "startTime": created,
            "containerStatuses": [container_status],
        },
    }
