"""Datasets: JSON Lines, CSV and Parquet files, each record a dict, read by contiguous index range.

A dataset location is a file or a directory; a directory's data files (by extension: ``.jsonl``, ``.ndjson``,
``.csv``, ``.parquet``/``.pq``; hidden files and ``assay.json`` ignored) are read in name order as one
dataset. Records are numbered from 0 over the whole dataset; that number is the record's index in
predictions, progress logs and error messages. CSV values stay strings (CSV has no types); use JSON Lines
or Parquet for numbers.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
DATA_SUFFIXES = JSON_LINES_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES

Record = dict[str, Any]
# What bytes.strip() removes; str.strip() would also remove Unicode spaces and disagree with count().
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
_UTF8_BOM = b"\xef\xbb\xbf"


class DatasetError(Exception):
    """The dataset cannot be read; the message names the file and, where known, the line."""


def shard_range(total: int, index: int, count: int) -> tuple[int, int]:
    """The contiguous ``[start, stop)`` of shard ``index`` of ``count``; sizes differ by at most one."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    base, extra = divmod(total, count)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


class DataFile(Protocol):
    path: Path

    def count(self) -> int: ...

    def read(self, start: int, stop: int) -> Iterator[Record]:
        """Records ``start`` (inclusive) to ``stop`` (exclusive), numbered within this file."""
        ...


@dataclass
class JsonLinesFile:
    path: Path

    def count(self) -> int:
        with self.path.open("rb") as file:
            if file.read(len(_UTF8_BOM)) != _UTF8_BOM:
                file.seek(0)  # the same byte-order mark read() drops
            return sum(1 for line in file if line.strip())

    def read(self, start: int, stop: int) -> Iterator[Record]:
        number = -1
        # Text mode: json.loads on str skips the encoding detection it runs on bytes (measurable per record).
        # newline="\n": split lines exactly where count() does (no universal-newline splitting on "\r").
        with self.path.open(encoding="utf-8-sig", newline="\n") as file:
            for line_number, line in enumerate(file, 1):
                if not line.strip(_ASCII_WHITESPACE):  # the same blank lines count() skips
                    continue
                number += 1
                if number < start:
                    continue  # skipped without parsing: resuming a shard stays cheap
                if number >= stop:
                    return
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise DatasetError(f"{self.path} line {line_number}: not valid JSON ({exc})") from exc
                if not isinstance(record, dict):
                    raise DatasetError(f"{self.path} line {line_number}: a record must be a JSON object")
                yield record


@dataclass
class CsvFile:
    """A header line, then one record per row; blank lines are skipped (by counting and reading alike)."""

    path: Path

    def _rows(self) -> Iterator[tuple[int, list[str], list[str]]]:
        """``(line number, header, row)`` for every non-blank row after the header."""
        # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name.
        with self.path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = next((row for row in reader if row), None)
            if header is None:
                return
            for row in reader:
                if row:  # csv.reader gives [] for a blank line
                    yield reader.line_num, header, row

    def count(self) -> int:
        return sum(1 for _ in self._rows())

    def read(self, start: int, stop: int) -> Iterator[Record]:
        for number, (line_number, header, row) in enumerate(self._rows()):
            if number < start:
                continue
            if number >= stop:
                return
            if len(row) > len(header):
                raise DatasetError(f"{self.path} line {line_number}: more fields than the header has")
            yield dict(itertools.zip_longest(header, row))


@dataclass
class ParquetFile:
    path: Path

    def _file(self) -> Any:
        try:
            import pyarrow.parquet as pq  # optional: only Parquet datasets need it
        except ImportError as exc:
            raise DatasetError(
                f"{self.path} is Parquet, which needs pyarrow: pip install 'assay[runner]'"
            ) from exc
        return pq.ParquetFile(self.path)

    def count(self) -> int:
        return int(self._file().metadata.num_rows)

    def read(self, start: int, stop: int) -> Iterator[Record]:
        position = 0
        for batch in self._file().iter_batches(batch_size=4096):
            batch_end = position + batch.num_rows
            if batch_end > start and position < stop:
                begin = max(start, position) - position
                yield from batch.slice(begin, min(stop, batch_end) - position - begin).to_pylist()
            position = batch_end
            if position >= stop:
                return


def open_file(path: Path) -> DataFile:
    name = path.name.lower()
    if name.endswith(JSON_LINES_SUFFIXES):
        return JsonLinesFile(path)
    if name.endswith(CSV_SUFFIXES):
        return CsvFile(path)
    if name.endswith(PARQUET_SUFFIXES):
        return ParquetFile(path)
    raise DatasetError(f"{path}: unknown format; name it *.jsonl, *.ndjson, *.csv or *.parquet")


class Dataset:
    """One or more data files read as a single sequence of records."""

    def __init__(self, files: list[DataFile]) -> None:
        self.files = files
        self._counts: list[int] | None = None

    def counts(self) -> list[int]:
        if self._counts is None:
            self._counts = [_guarded(f.path, f.count) for f in self.files]
        return self._counts

    def count(self) -> int:
        return sum(self.counts())

    def records(self, start: int, stop: int) -> Iterator[tuple[int, Record]]:
        """``(index, record)`` for dataset indices ``start`` to ``stop`` (exclusive)."""
        offset = 0
        for file, size in zip(self.files, self.counts(), strict=True):
            begin, end = max(start, offset), min(stop, offset + size)
            if begin < end:
                try:
                    # Exceptions raised by the consumer are not thrown in here: only the reader's are caught.
                    yield from enumerate(file.read(begin - offset, end - offset), begin)
                except Exception as exc:
                    raise _dataset_error(file.path, exc) from exc
            offset += size


def _dataset_error(path: Path, exc: Exception) -> DatasetError:
    if isinstance(exc, DatasetError):
        return exc
    if isinstance(exc, OSError | UnicodeDecodeError | csv.Error | ValueError):
        return DatasetError(f"cannot read {path}: {exc}")
    # pyarrow's errors have no common base we can import without pyarrow
    return DatasetError(f"cannot read {path}: {type(exc).__name__}: {exc}")


def _guarded(path: Path, call: Callable[[], int]) -> int:
    """Run a reader call, turning its errors into a :class:`DatasetError` naming the file."""
    try:
        return call()
    except Exception as exc:
        raise _dataset_error(path, exc) from exc


def open_dataset(path: Path) -> Dataset:
    """A dataset from a data file or a directory of them; raises :class:`DatasetError` if there is none."""
    if path.is_file():
        return Dataset([open_file(path)])
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(DATA_SUFFIXES)
        )
        if not files:
            raise DatasetError(f"{path} holds no data file (*.jsonl, *.ndjson, *.csv, *.parquet)")
        return Dataset([open_file(p) for p in files])
    raise DatasetError(f"{path} does not exist")
