"""A finished evaluation with per-record results, as the operator and the runner leave it: an output written
by the runner's own writer, and a status that points at it (shared by test_results.py and test_console.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from assay.api import EVALUATION_PLURAL, GROUP, VERSION
from assay.runner.predictions import PredictionWriter
from assay.runner.steps import EvaluateResult, write_report

METRICS: dict[str, Any] = {
    "accuracy": 0.7,
    "confusion matrix": {"labels": [0, 1, 2], "matrix": [[3, 1, 0], [0, 2, 1], [0, 1, 2]]},
}


def write_output(directory: Path) -> Path:
    """10 records in 2 shards, label = index % 3, records 2, 5 and 7 predicted wrong."""
    records = [{"id": i, "label": i % 3} for i in range(10)]
    predictions = [(i % 3 + 1) % 3 if i in (2, 5, 7) else i % 3 for i in range(10)]
    for shard, (start, stop) in enumerate([(0, 5), (5, 10)]):
        with PredictionWriter(directory / "predictions", shard, 2, start, stop) as writer:
            writer.write_batch(start, predictions[start:stop], records[start:stop])
    write_report(directory, EvaluateResult({"accuracy": 0.7}, METRICS, 10, shards=2), {})
    return directory


def finished_evaluation(custom: client.CustomObjectsApi, namespace: str, name: str, location: str) -> None:
    """An Evaluation whose status says it succeeded and where its results are, as the operator writes it."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": name},
        "spec": {
            "pool": "nowhere",
            "model": {"name": "m", "uri": "file:///models/m"},
            "handler": "m:H",
            "dataset": {"name": "d", "uri": "file:///data/d"},
            "runtime": {"image": "assay-runner:fake"},
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, body)
    status = {
        "phase": "Succeeded",
        "results": {"summary": {"accuracy": 0.7}, "records": 10, "location": location},
    }
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, EVALUATION_PLURAL, name, {"status": status}
    )
