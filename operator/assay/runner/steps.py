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

from assay.contract import REPORT_FILE, ExitCode, Scalar
from assay.runner.datasets import Dataset, DatasetError, Record, shard_range
from assay.runner.failures import TaskFailed
from assay.runner.handlers import Handler
from assay.runner.predictions import (
    PREDICTIONS_DIR,
    PredictionsError,
    PredictionWriter,
    read_predictions,
    read_stored,
    shard_files,
)
from assay.runner.progress import Progress
from assay.runner.summary import flatten_metrics, plain

log = logging.getLogger("assay.runner")


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


def _open_writer(output: Path, shard_index: int, shard_count: int, start: int, stop: int) -> PredictionWriter:
    try:
        return PredictionWriter(output / PREDICTIONS_DIR, shard_index, shard_count, start, stop)
    except OSError as exc:
        raise TaskFailed(
            ExitCode.OUTPUT_NOT_WRITABLE, f"cannot write predictions under {output}: {exc}"
        ) from exc


def _predict(
    handler: Handler, dataset: Dataset, writer: PredictionWriter, batch_size: int, progress: Progress
) -> Iterator[tuple[Record, Any]]:
    """Predict the writer's remaining records batch by batch, storing each batch before yielding its pairs."""
    for first_index, batch in _batches(_records(dataset, writer.next_index, writer.stop), batch_size):
        predictions = handler.predict(batch, first_index)
        try:
            writer.write_batch(first_index, predictions, batch)
        except OSError as exc:
            raise TaskFailed(ExitCode.OUTPUT_NOT_WRITABLE, f"cannot write {writer.path}: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise TaskFailed(
                ExitCode.HANDLER_FAILED,
                f"{handler.spec}.predict returned a prediction for records {first_index}.. "
                f"that is not a JSON value: {exc}",
            ) from exc
        progress.advance(len(batch))
        yield from zip(batch, predictions, strict=True)
    progress.finish()


def _start_shard(label: str, writer: PredictionWriter, total: int, batch_size: int) -> Progress:
    if writer.resumed_from:
        log.info("%s: resumed from %d records already written in %s", label, writer.resumed_from, writer.path)
    log.info(
        "%s: records %d..%d of %d, batch size %d", label, writer.start, writer.stop - 1, total, batch_size
    )
    return Progress(label, writer.stop - writer.start, done=writer.resumed_from)


def predict_shard(
    handler: Handler, dataset: Dataset, output: Path, shard_index: int, shard_count: int, batch_size: int
) -> int:
    """Run shard ``shard_index`` of ``shard_count`` through the handler; returns the records predicted now."""
    total = count_records(dataset)
    start, stop = shard_range(total, shard_index, shard_count)
    with _open_writer(output, shard_index, shard_count, start, stop) as writer:
        label = f"predict task {shard_index} (tasks 0..{shard_count - 1})"  # numbered as in the status
        progress = _start_shard(label, writer, total, batch_size)
        for _ in _predict(handler, dataset, writer, batch_size, progress):
            pass
        return progress.processed


@dataclass(frozen=True)
class EvaluateResult:
    """What the evaluate step produced."""

    summary: dict[str, Scalar]
    metrics: dict[str, Any]
    records: int
    shards: int = 1  # how many prediction shard files hold the per-record results


def _evaluate(
    handler: Handler,
    rows: Iterator[tuple[Record, Any]],
    total: int,
    output: Path,
    meta: dict[str, Any],
    shards: int = 1,
) -> EvaluateResult:
    """Call the handler's ``evaluate`` on the pairs, flatten its metrics and write the report."""
    used = 0

    def counted() -> Iterator[tuple[Record, Any]]:
        nonlocal used
        for row in rows:
            used += 1
            yield row

    metrics = handler.evaluate(counted())
    if used != total:
        log.warning("%s.evaluate used %d of %d (record, prediction) pairs", handler.spec, used, total)
    result = EvaluateResult(
        summary=flatten_metrics(metrics), metrics=plain(dict(metrics)), records=total, shards=shards
    )
    write_report(output, result, meta)
    return result


def predict_and_evaluate(
    handler: Handler, dataset: Dataset, output: Path, batch_size: int, meta: dict[str, Any]
) -> EvaluateResult:
    """A single-task evaluation in one pass: ``evaluate`` pulls pairs while ``predict`` produces them.

    The dataset is read once and predictions are never read back (except those a retried task had already
    written), so one task costs what a plain loop over the handler costs, plus storing the predictions.
    """
    total = count_records(dataset)
    with _open_writer(output, 0, 1, 0, total) as writer:
        progress = _start_shard("predict+evaluate", writer, total, batch_size)

        def rows() -> Iterator[tuple[Record, Any]]:
            if writer.resumed_from:
                stored = read_stored(writer.path, writer.resumed_from)
                for (_, record), prediction in zip(
                    _records(dataset, 0, writer.next_index), stored, strict=False
                ):
                    yield record, prediction
            yield from _predict(handler, dataset, writer, batch_size, progress)

        return _evaluate(handler, rows(), total, output, meta)


def evaluate_predictions(
    handler: Handler, dataset: Dataset, output: Path, shard_count: int | None, meta: dict[str, Any]
) -> EvaluateResult:
    """The evaluate step after separate predict tasks: pair every record with its stored prediction."""
    total = count_records(dataset)
    try:
        files = shard_files(output / PREDICTIONS_DIR, shard_count)
    except PredictionsError as exc:
        raise TaskFailed(ExitCode.PREDICTIONS_MISSING, str(exc)) from exc
    log.info("evaluate: %d records, predictions from %d shard(s) in %s", total, len(files), output)
    progress = Progress("evaluate", total)

    def rows() -> Iterator[tuple[Record, Any]]:
        predictions = read_predictions(files, total)
        try:
            for (_, record), prediction in zip(_records(dataset, 0, total), predictions, strict=False):
                progress.advance(1)
                yield record, prediction
            next(predictions, None)  # runs the generator's final completeness check
        except PredictionsError as exc:
            raise TaskFailed(ExitCode.PREDICTIONS_MISSING, str(exc)) from exc
        progress.finish()

    return _evaluate(handler, rows(), total, output, meta, shards=len(files))


def write_report(output: Path, result: EvaluateResult, meta: dict[str, Any]) -> None:
    """``report.json``: the full summary (nothing dropped for size), the raw metrics, and where the
    per-record results are (the prediction shards, in dataset order)."""
    report = {
        **meta,
        "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "records": result.records,
        "summary": result.summary,
        "metrics": result.metrics,
        "predictions": PREDICTIONS_DIR + "/",
        "predictionShards": result.shards,
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
