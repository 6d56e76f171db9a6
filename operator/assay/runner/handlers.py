"""Loading the user's handler (``spec.handler = "module:attribute"``) and calling it safely.

The contract (also in the README):

* ``module`` is imported with the model directory first on ``sys.path``; ``attribute`` may be dotted
  (``module:Outer.Inner``).
* The attribute is a class or a factory function, called once per task: with ``model_dir=<pathlib.Path>``
  when its signature has a ``model_dir`` parameter (or ``**kwargs``), else with no arguments. An
  attribute that is neither (an object with ``predict``) is used as it is.
* ``predict``: by default it receives a batch (a list of record dicts, at most ``batchSize`` long) and returns
  a list with one prediction per record, in order. A handler whose ``predict`` takes a single record sets the
  class attribute ``batched = False``; there is no guessing from signatures.
* ``evaluate(rows)`` receives an iterator of ``(record, prediction)`` pairs over the whole dataset, in dataset
  order, and returns a dict of metrics (nested dicts become ``a/b`` keys in the summary).

Predictions and metrics must be JSON values (numpy scalars and arrays are converted).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.contract import ExitCode
from assay.runner.datasets import Record
from assay.runner.failures import TaskFailed

log = logging.getLogger("assay.runner")


def parse_handler_spec(spec: str) -> tuple[str, str]:
    """``"pkg.module:Attr.inner"`` → ``("pkg.module", "Attr.inner")``; raises ValueError with the fix."""
    module, sep, attribute = spec.strip().partition(":")
    parts = [*module.split("."), *attribute.split(".")]
    if not sep or not all(part.isidentifier() for part in parts):
        raise ValueError(
            f"handler {spec!r} must look like 'module:attribute' (Python names, e.g. my_eval:Evaluator)"
        )
    return module, attribute


def _short_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _where(exc: BaseException) -> str:
    """The innermost frame of a traceback, as ``file:line in function``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"


@dataclass
class Handler:
    """A loaded handler with the calling convention resolved."""

    target: Any
    batched: bool
    spec: str

    def predict(self, records: Sequence[Record], first_index: int) -> list[Any]:
        """Predictions for records numbered ``first_index``..; a failure names the record that caused it."""
        if not self.batched:
            predictions = []
            for offset, record in enumerate(records):
                try:
                    predictions.append(self.target.predict(record))
                except Exception as exc:
                    raise self._failed_on(first_index + offset, exc) from exc
            return predictions
        try:
            result = self.target.predict(list(records))
        except Exception as exc:
            raise self._locate_failure(records, first_index, exc) from exc
        if hasattr(result, "tolist") and not isinstance(result, list):
            result = result.tolist()
        if not isinstance(result, Sequence) or isinstance(result, str | bytes) or len(result) != len(records):
            got = (
                f"{len(result)} predictions" if isinstance(result, Sequence) else f"a {type(result).__name__}"
            )
            raise TaskFailed(
                ExitCode.HANDLER_FAILED,
                f"{self.spec}.predict returned {got} for a batch of {len(records)} records "
                f"({first_index}..{first_index + len(records) - 1}); it must return one prediction per "
                "record. A predict that takes a single record needs the class attribute `batched = False`.",
            )
        return list(result)

    def _failed_on(self, index: int, exc: Exception) -> TaskFailed:
        log.error("predict raised on record %d", index, exc_info=exc)
        return TaskFailed(
            ExitCode.HANDLER_FAILED,
            f"{self.spec}.predict raised on record {index}: {_short_error(exc)}{_where(exc)}",
        )

    def _locate_failure(self, records: Sequence[Record], first_index: int, exc: Exception) -> TaskFailed:
        """A batch failed: retry its records one by one to name the one that breaks the handler."""
        for offset, record in enumerate(records):
            try:
                self.target.predict([record])
            except Exception as single:
                return self._failed_on(first_index + offset, single)
        log.error(
            "predict raised on records %d..%d", first_index, first_index + len(records) - 1, exc_info=exc
        )
        return TaskFailed(
            ExitCode.HANDLER_FAILED,
            f"{self.spec}.predict raised on the batch of records "
            f"{first_index}..{first_index + len(records) - 1} (each record alone succeeds): "
            f"{_short_error(exc)}{_where(exc)}",
        )

    def evaluate(self, rows: Iterable[tuple[Record, Any]]) -> Mapping[str, Any]:
        try:
            metrics = self.target.evaluate(rows)
        except TaskFailed:
            raise  # a dataset or predictions failure raised while the handler iterated the rows
        except Exception as exc:
            log.error("evaluate raised", exc_info=exc)
            raise TaskFailed(
                ExitCode.HANDLER_FAILED, f"{self.spec}.evaluate raised: {_short_error(exc)}{_where(exc)}"
            ) from exc
        if not isinstance(metrics, Mapping):
            raise TaskFailed(
                ExitCode.HANDLER_FAILED,
                f"{self.spec}.evaluate returned a {type(metrics).__name__}; it must return a dict of metrics",
            )
        return metrics


def load_handler(model_dir: Path, spec: str) -> Handler:
    """Import and instantiate the handler; every failure is ``HANDLER_NOT_IMPORTABLE`` with what to fix."""

    def fail(message: str) -> TaskFailed:
        return TaskFailed(ExitCode.HANDLER_NOT_IMPORTABLE, message)

    try:
        module_name, attribute = parse_handler_spec(spec)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    model_path = str(model_dir.resolve())
    if model_path not in sys.path:
        sys.path.insert(0, model_path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise fail(
                f"module {module_name!r} not found in the model directory {model_dir}; "
                f"put {module_name.replace('.', '/')}.py there or fix spec.handler"
            ) from exc
        raise fail(
            f"importing {module_name!r} failed: {_short_error(exc)} (missing from the runtime image?)"
        ) from exc
    except Exception as exc:
        log.error("importing %s failed", module_name, exc_info=exc)
        raise fail(f"importing {module_name!r} raised {_short_error(exc)}{_where(exc)}") from exc
    target: Any = module
    for name in attribute.split("."):
        if not hasattr(target, name):
            raise fail(f"{module_name!r} has no attribute {attribute!r} (spec.handler is {spec!r})")
        target = getattr(target, name)
    if inspect.isclass(target) or inspect.isroutine(target):
        target = _instantiate(target, model_dir, spec, fail)
    for method in ("predict", "evaluate"):
        if not callable(getattr(target, method, None)):
            raise fail(f"{spec} has no {method}() method; a handler needs predict(batch) and evaluate(rows)")
    batched = getattr(target, "batched", True)
    if not isinstance(batched, bool):
        raise fail(f"{spec}.batched must be True or False, got {batched!r}")
    return Handler(target=target, batched=batched, spec=spec)


def _instantiate(
    factory: Callable[..., Any], model_dir: Path, spec: str, fail: Callable[[str], TaskFailed]
) -> Any:
    parameters: Mapping[str, inspect.Parameter]
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}  # builtins without a signature: call with nothing
    takes_model_dir = "model_dir" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    try:
        return factory(model_dir=model_dir) if takes_model_dir else factory()
    except Exception as exc:
        log.error("creating the handler %s failed", spec, exc_info=exc)
        raise fail(f"creating {spec} raised {_short_error(exc)}{_where(exc)}") from exc
