"""Train the digits example model and export its test set; no download (scikit-learn ships the data).

    python examples/digits/train.py [--out examples/digits]

writes ``<out>/model/v1/`` (``classifier.pkl`` + the handler module ``digits_handler.py``) and
``<out>/data/v1/digits-test.jsonl`` (the held-out half of the digits, one JSON object per line). The version
directories are how ``model.version: v1`` and ``dataset.version: v1`` resolve. Deterministic: the same
scikit-learn version gives the same model and the same data.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

HERE = Path(__file__).resolve().parent
VERSION = "v1"
SEED = 0


def train(out: Path) -> tuple[Path, Path]:
    """Write the model and the test set under ``out``; returns (model directory, dataset file)."""
    digits = load_digits()
    features_train, features_test, labels_train, labels_test = train_test_split(
        digits.data, digits.target, test_size=0.5, random_state=SEED, stratify=digits.target
    )
    model = SVC(gamma=0.001, C=10.0).fit(features_train, labels_train)

    model_dir = out / "model" / VERSION
    model_dir.mkdir(parents=True, exist_ok=True)
    with open(model_dir / "classifier.pkl", "wb") as file:
        pickle.dump(model, file)
    shutil.copyfile(HERE / "digits_handler.py", model_dir / "digits_handler.py")

    data_dir = out / "data" / VERSION
    data_dir.mkdir(parents=True, exist_ok=True)
    dataset = data_dir / "digits-test.jsonl"
    with open(dataset, "w", encoding="utf-8") as file:
        for number, (pixels, label) in enumerate(zip(features_test, labels_test, strict=True)):
            record = {"id": number, "pixels": [int(v) for v in pixels], "label": int(label)}
            file.write(json.dumps(record, separators=(",", ":")) + "\n")
    return model_dir, dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="where model/ and data/ go (default: beside this file)"
    )
    model_dir, dataset = train(parser.parse_args().out)
    print(f"model:   {model_dir}\ndataset: {dataset}")


if __name__ == "__main__":
    main()
