"""Debug mode's guard in the runner: no notebook server behind a missing or short password."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.contract import ExitCode
from assay.runner.debug import start_debug_server
from assay.runner.failures import TaskFailed


@pytest.mark.parametrize("password", [None, "", "fifteen-chars!!"])
def test_no_debug_server_behind_a_missing_or_short_password(tmp_path: Path, password: str | None) -> None:
    with pytest.raises(TaskFailed) as refused:
        start_debug_server(8000, password, tmp_path)
    assert refused.value.code is ExitCode.DEBUG_PASSWORD_MISSING
    assert "at least 16 characters" in refused.value.message
    assert not password or password not in refused.value.message
