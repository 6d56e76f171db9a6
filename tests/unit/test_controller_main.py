"""The operator's log: refused admissions are INFO, not ERROR (the mistake is the user's)."""

from __future__ import annotations

import logging

import pytest

from assay.controller.main import AdmissionRefusalsAreInfo

pytestmark = pytest.mark.faults


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


def test_a_refused_admission_is_info() -> None:
    refused = record(
        logging.ERROR, "Webhook 'evaluation.assay.dev' failed permanently: spec.pool: no such pool"
    )
    assert AdmissionRefusalsAreInfo().filter(refused)
    assert (refused.levelno, refused.levelname) == (logging.INFO, "INFO")


def test_other_errors_stay_errors() -> None:
    failed = record(logging.ERROR, "Handler 'evaluation_changed' failed with an exception. Will retry.")
    assert AdmissionRefusalsAreInfo().filter(failed)
    assert failed.levelno == logging.ERROR
