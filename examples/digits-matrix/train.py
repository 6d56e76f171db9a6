"""Train the digits-matrix example: two SVC settings, the held-out digits and a noisy copy of them.

    python examples/digits-matrix/train.py

writes ``model/v1/`` (the digits example's SVC, C=10, gamma=0.001) and ``model/v2/`` (C=1, gamma=0.0002),
``data/v1/digits-test.jsonl`` (the held-out half, as in examples/digits) and ``data/noisy-v1/`` (the same
records with Gaussian noise on every pixel, clipped to the 0..16 range). Deterministic, no download.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "digits"))

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.svm import SVC  # noqa: E402
from train import SEED  # noqa: E402  (examples/digits/train.py: same split, same handler)
from train import train as train_digits  # noqa: E402

NOISE_SIGMA = 3.0
V2_SETTINGS = {"C": 1.0, "gamma": 0.0002}


def main() -> None:
    model_v1, dataset = train_digits(HERE)  # model/v1 and data/v1, exactly the digits example's
    records = [json.loads(line) for line in dataset.read_text().splitlines()]

    # v2: other settings on the same training half (train_digits wrote the other half to data/v1).
    digits = load_digits()
    features_train, _, labels_train, _ = train_test_split(
        digits.data, digits.target, test_size=0.5, random_state=SEED, stratify=digits.target
    )
    model_v2 = HERE / "model" / "v2"
    model_v2.mkdir(parents=True, exist_ok=True)
    with open(model_v2 / "classifier.pkl", "wb") as file:
        pickle.dump(SVC(**V2_SETTINGS).fit(features_train, labels_train), file)  # type: ignore[arg-type]
    shutil.copyfile(model_v1 / "digits_handler.py", model_v2 / "digits_handler.py")

    noisy = HERE / "data" / "noisy-v1"
    noisy.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    with open(noisy / "digits-noisy.jsonl", "w", encoding="utf-8") as file:
        for record in records:
            pixels = [min(16, max(0, round(v + rng.gauss(0, NOISE_SIGMA)))) for v in record["pixels"]]
            file.write(json.dumps({**record, "pixels": pixels}, separators=(",", ":")) + "\n")
    print(f"models: {model_v1} {model_v2}\ndatasets: {dataset} {noisy}")


if __name__ == "__main__":
    main()
