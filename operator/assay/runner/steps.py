"""The two steps of an evaluation: predict one shard, evaluate all predictions."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.contract import ExitCode, Scalar
from assay.runner.datasets import Dataset, DatasetError, Record, shard_range
from assay.runner.failures import TaskFailed
from assay.runner.handlers import Handler
from assay.runner.metrics import flatten_metrics, plain
from assay.runner.predictions import (
    PREDICTIONS_DIR,
    PredictionsError,
    PredictionWriter,
    encode_line,
    read_predictions,
    shard_files,
)
from assay.runner.progress import Progress

log = logging.getLogger("assay.runner")

REPORT_FILE = "report.json"
RESULTS_FILE = "results.jsonl"


def count_records(dataset: Dataset) -> int:
    try:
        return dataset.count()
    except DatasetError as exc:
        raise TaskFailed(ExitCode.DATASET_UNREADABLE, str(exc)) from exc


def _records(dataset: Dataset, start: int, stop: int) -> Iterator[tuple[int, Record]]:
    try:
        yield from dataset.records(start, stop)
    except DatasetError as exc:
        raise TaskFailed(ExitCode.DATASET_UNREADABLE, str(exc)) from exc


def _batches(items: Iterator[tuple[int, Record]], size: int) -> Iterator[tuple[int, list[Record]]]:
    batch: list[Record] = []
    first = 0
    for index, record in items:
        if not batch:
            first = index
        batch.append(record)
        if len(batch) == size:
            yield first, batch
            batch = []
    if batch:
        yield first, batch


def predict_shard(
    handler: Handler, dataset: Dataset, output: Path, shard_index: int, shard_count: int, batch_size: int
) -> int:
    """Run shard ``shard_index`` of ``shard_count`` through the handler; returns the records predicted now."""
    total = count_records(dataset)
    start, stop = shard_range(total, shard_index, shard_count)
    label = f"predict shard {shard_index + 1}/{shard_count}"
    try:
        writer = PredictionWriter(output / PREDICTIONS_DIR, shard_index, shard_count, start, stop)
    except OSError as exc:
        raise TaskFailed(
            ExitCode.OUTPUT_NOT_WRITABLE, f"cannot write predictions under {output}: {exc}"
        ) from exc
    with writer:
        if writer.resumed_from:
            log.info(
                "%s: resumed from %d records already written in %s", label, writer.resumed_from, writer.path
            )
        log.info("%s: records %d..%d of %d, batch size %d", label, start, stop - 1, total, batch_size)
        progress = Progress(label, stop - start, done=writer.resumed_from)
        for first_index, batch in _batches(_records(dataset, writer.next_index, stop), batch_size):
            predictions = handler.predict(batch, first_index)
            try:
                writer.write_batch(first_index, predictions)
            except OSError as exc:
                raise TaskFailed(ExitCode.OUTPUT_NOT_WRITABLE, f"cannot write {writer.path}: {exc}") from exc
            except (TypeError, ValueError) as exc:
                raise TaskFailed(
                    ExitCode.HANDLER_FAILED,
                    f"{handler.spec}.predict returned a prediction for records {first_index}.. "
                    f"that is not a JSON value: {exc}",
                ) from exc
            progress.advance(len(batch))
        progress.finish()
        return progress.processed


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate step produced."""

    summary: dict[str, Scalar]
    metrics: dict[str, Any]
    records: int


def evaluate_predictions(
    handler: Handler, dataset: Dataset, output: Path, shard_count: int | None, report_meta: dict[str, Any]
) -> Evaluation:
    """Pair every record with its prediction, call ``evaluate``, write the report; returns the summary."""
    total = count_records(dataset)
    try:
        files = shard_files(output / PREDICTIONS_DIR, shard_count)
    except PredictionsError as exc:
        raise TaskFailed(ExitCode.PREDICTIONS_MISSING, str(exc)) from exc
    log.info("evaluate: %d records, predictions from %d shard(s) in %s", total, len(files), output)
    results_path = output / RESULTS_FILE
    try:
        results = results_path.open("w", encoding="utf-8")
    except OSError as exc:
        raise TaskFailed(ExitCode.OUTPUT_NOT_WRITABLE, f"cannot write {results_path}: {exc}") from exc
    progress = Progress("evaluate", total)
    seen = 0

    def rows() -> Iterator[tuple[Record, Any]]:
        nonlocal seen
        predictions = read_predictions(files, total)
        try:
            for (index, record), prediction in zip(_records(dataset, 0, total), predictions, strict=False):
                results.write(encode_line(index, prediction))
                seen += 1
                if seen % 1024 == 0:
                    progress.advance(1024)
                yield record, prediction
            next(predictions, None)  # runs the generator's final completeness check
        except PredictionsError as exc:
            raise TaskFailed(ExitCode.PREDICTIONS_MISSING, str(exc)) from exc

    with results:
        metrics = handler.evaluate(rows())
    if seen != total:
        log.warning("evaluate used %d of %d (record, prediction) pairs", seen, total)
    progress.advance(seen % 1024)
    progress.finish()
    summary = flatten_metrics(metrics)
    result = Evaluation(summary=summary, metrics=plain(dict(metrics)), records=total)
    write_report(output, result, report_meta)
    return result


def write_report(output: Path, result: Evaluation, meta: dict[str, Any]) -> None:
    """``report.json``: the full summary (nothing dropped for size), the raw metrics and where the rest is."""
    report = {
        **meta,
        "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "records": result.records,
        "summary": result.summary,
        "metrics": result.metrics,
        "results": RESULTS_FILE,
        "predictions": PREDICTIONS_DIR + "/",
    }
    path = output / REPORT_FILE
    partial = path.with_name(f".{REPORT_FILE}.partial")
    try:
        partial.write_text(
            json.dumps(report, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8"
        )
        os.replace(partial, path)
    except (OSError, ValueError) as exc:
        raise TaskFailed(ExitCode.OUTPUT_NOT_WRITABLE, f"cannot write {path}: {exc}") from exc
    log.info("report written to %s", path)
