"""Loading handlers (module:attribute in the model directory) and calling them; metrics and progress lines."""

from __future__ import annotations

import math
import textwrap
import uuid
from pathlib import Path

import pytest

from assay.contract import ExitCode
from assay.runner.failures import TaskFailed
from assay.runner.handlers import load_handler, parse_handler_spec
from assay.runner.progress import Progress, format_duration, progress_line
from assay.runner.summary import flatten_metrics


def _model(tmp_path: Path, source: str) -> tuple[Path, str]:
    """A model directory holding one handler module with a unique name (modules are cached per process)."""
    module = f"handler_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    return tmp_path, module


def test_a_class_gets_model_dir_and_predicts_batches(tmp_path: Path) -> None:
    model_dir, module = _model(
        tmp_path,
        """
        class Doubler:
            def __init__(self, model_dir):
                self.factor = int((model_dir / "factor.txt").read_text())
            def predict(self, batch):
                return [r["x"] * self.factor for r in batch]
            def evaluate(self, rows):
                return {"sum": sum(p for _, p in rows)}
        """,
    )
    (model_dir / "factor.txt").write_text("2")
    handler = load_handler(model_dir, f"{module}:Doubler")
    assert handler.batched
    assert handler.predict([{"x": 1}, {"x": 5}], first_index=0) == [2, 10]
    assert handler.evaluate(iter([({}, 2), ({}, 10)])) == {"sum": 12}


def test_a_factory_without_arguments_and_a_per_record_predict(tmp_path: Path) -> None:
    model_dir, module = _model(
        tmp_path,
        """
        class PerRecord:
            batched = False
            def predict(self, record):
                return record["x"] + 1
            def evaluate(self, rows):
                return {}
        def make():
            return PerRecord()
        """,
    )
    handler = load_handler(model_dir, f"{module}:make")
    assert not handler.batched
    assert handler.predict([{"x": 1}, {"x": 2}], first_index=0) == [2, 3]


RAISES_ON_SEVEN = """
class Picky:
    def predict(self, batch):
        for record in batch:
            if record["x"] == 7:
                raise ValueError("seven is not a digit I like")
        return [0] * len(batch)
    def evaluate(self, rows):
        return {}
"""


def test_a_failing_batch_names_the_record_that_breaks_it(tmp_path: Path) -> None:
    model_dir, module = _model(tmp_path, RAISES_ON_SEVEN)
    handler = load_handler(model_dir, f"{module}:Picky")
    batch = [{"x": x} for x in range(5, 10)]
    with pytest.raises(TaskFailed) as caught:
        handler.predict(batch, first_index=100)
    assert caught.value.code is ExitCode.HANDLER_FAILED
    assert "raised on record 102" in caught.value.message
    assert "seven is not a digit I like" in caught.value.message


def test_a_wrong_number_of_predictions_hints_at_batched_false(tmp_path: Path) -> None:
    model_dir, module = _model(
        tmp_path,
        """
        class Single:
            def predict(self, record):
                return 1
            def evaluate(self, rows):
                return {}
        """,
    )
    with pytest.raises(TaskFailed, match="batched = False") as caught:
        load_handler(model_dir, f"{module}:Single").predict([{}, {}], first_index=0)
    assert caught.value.code is ExitCode.HANDLER_FAILED


@pytest.mark.parametrize(
    ("spec", "source", "message"),
    [
        ("no_such_module:Handler", "", "not found in the model directory"),
        ("{module}:Missing", "class Handler: pass", "has no attribute 'Missing'"),
        ("{module}:Handler", "import not_installed_anywhere\n", "missing from the runtime image"),
        ("{module}:Handler", "raise RuntimeError('boom at import')\n", "boom at import"),
        (
            "{module}:Handler",
            "class Handler:\n    def __init__(self):\n        raise OSError('no weights')\n",
            "no weights",
        ),
        (
            "{module}:Handler",
            "class Handler:\n    def predict(self, b): return b\n",
            r"no evaluate\(\) method",
        ),
        ("{module}", "", "must look like 'module:attribute'"),
    ],
)
def test_handlers_that_cannot_be_loaded_say_what_to_fix(
    tmp_path: Path, spec: str, source: str, message: str
) -> None:
    model_dir, module = _model(tmp_path, source)
    with pytest.raises(TaskFailed, match=message) as caught:
        load_handler(model_dir, spec.format(module=module))
    assert caught.value.code is ExitCode.HANDLER_NOT_IMPORTABLE


def test_evaluate_must_return_a_dict(tmp_path: Path) -> None:
    model_dir, module = _model(
        tmp_path, "class H:\n    def predict(self, b): return b\n    def evaluate(self, rows): return 0.5\n"
    )
    with pytest.raises(TaskFailed, match="must return a dict"):
        load_handler(model_dir, f"{module}:H").evaluate(iter([]))


def test_parse_handler_spec() -> None:
    assert parse_handler_spec("pkg.mod:Outer.Inner") == ("pkg.mod", "Outer.Inner")
    for bad in ("mod", "mod:", ":Attr", "../evil:X", "mod:a-b"):
        with pytest.raises(ValueError):
            parse_handler_spec(bad)


def test_flatten_metrics_keeps_order_and_scalars() -> None:
    np = pytest.importorskip("numpy")
    metrics = {
        "accuracy": np.float64(0.5),
        "macro avg": {"f1": 0.25, "support": np.int64(10)},
        "confusion": [[1, 0], [0, 1]],  # not a scalar: left to the report
        "loss": math.nan,
    }
    assert list(flatten_metrics(metrics).items()) == [
        ("accuracy", 0.5),
        ("macro avg/f1", 0.25),
        ("macro avg/support", 10),
        ("loss", None),
    ]


def test_progress_lines_give_rate_and_eta() -> None:
    assert progress_line("predict", 500, 1000, 500, 2.0) == (
        "predict: 500/1000 records (50.0%), 250.0 records/s, ETA 0:00:02"
    )
    assert progress_line("predict", 0, 10, 0, 0.0).endswith("ETA unknown")
    assert format_duration(3725) == "1:02:05"


def test_progress_rate_counts_only_this_runs_records(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = Progress("shard", total=100, done=40, interval=1.0, clock=lambda: now[0])
    now[0] = 2.0
    with caplog.at_level("INFO", logger="assay.runner"):
        progress.advance(20)
    assert "60/100 records (60.0%), 10.0 records/s, ETA 0:00:04" in caplog.text


def test_progress_interval_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.runner.progress import DEFAULT_PROGRESS_INTERVAL_SECONDS, progress_interval

    monkeypatch.setenv("ASSAY_PROGRESS_INTERVAL", "0.5")
    assert progress_interval() == 0.5
    for bad in ("", "soon", "-1"):
        monkeypatch.setenv("ASSAY_PROGRESS_INTERVAL", bad)
        assert progress_interval() == DEFAULT_PROGRESS_INTERVAL_SECONDS
