"""The Assay handler of the digits example: a scikit-learn SVC over 8x8 images of handwritten digits.

``spec.handler: digits_handler:DigitsClassifier``. The runner puts the model directory (which holds this file
and ``classifier.pkl``, both written by ``train.py``) on ``sys.path``, creates the class once per task with
``model_dir``, calls ``predict`` on batches of records and ``evaluate`` once over all (record, prediction)
pairs. A record is ``{"id": 17, "pixels": [64 numbers 0..16], "label": 3}``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix


class DigitsClassifier:
    # predict receives a list of records (a batch); a per-record handler would set this to False.
    batched = True

    def __init__(self, model_dir: Path) -> None:
        with open(Path(model_dir) / "classifier.pkl", "rb") as file:
            self.model = pickle.load(file)

    def predict(self, batch: list[dict[str, Any]]) -> list[int]:
        pixels = np.asarray([record["pixels"] for record in batch], dtype=np.float64)
        return self.model.predict(pixels).tolist()

    def evaluate(self, rows: Iterable[tuple[dict[str, Any], int]]) -> dict[str, Any]:
        labels: list[int] = []
        predicted: list[int] = []
        for record, prediction in rows:
            labels.append(int(record["label"]))
            predicted.append(int(prediction))
        report = classification_report(labels, predicted, output_dict=True, zero_division=0)
        classes = sorted(set(labels) | set(predicted))
        # The headline metric first: the summary keeps metrics in this order when it must drop some.
        return {
            "accuracy": accuracy_score(labels, predicted),
            "macro avg": report["macro avg"],
            "weighted avg": report["weighted avg"],
            "per class": {str(digit): report[str(digit)] for digit in sorted(set(labels))},
            # Lists stay out of the summary; the report keeps them and the console draws this one.
            "confusion matrix": {
                "labels": classes,
                "matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
            },
        }
