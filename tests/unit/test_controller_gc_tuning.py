"""The operator's garbage collector settings: start-up's objects frozen, full collections less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from assay.controller import gc_tuning


@pytest.fixture
def interpreter_defaults() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("interpreter_defaults")
def test_tune_freezes_what_exists_and_runs_full_collections_less_often() -> None:
    assert gc.get_freeze_count() == 0
    existing = object.__new__(type("Existing", (), {}))
    assert any(o is existing for o in gc.get_objects())
    gc_tuning.tune()
    assert gc.get_threshold() == gc_tuning.THRESHOLDS
    assert gc_tuning.THRESHOLDS[2] > 10  # the interpreter's default for full collections
    assert gc.get_freeze_count() > 0
    assert not any(o is existing for o in gc.get_objects())  # frozen: no collection walks it
