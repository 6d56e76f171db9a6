"""Debug mode's guard in the runner: no notebook server behind a missing, unreadable or short password."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.contract import ExitCode
from assay.runner.debug import read_password, start_debug_server
from assay.runner.failures import TaskFailed

SHORT = "fifteen-chars!!"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "no ASSAY_DEBUG_PASSWORD_FILE"),  # no file named at all
        (b"", "empty"),
        (SHORT.encode(), "15 characters"),
        (b"\xff" * 20, "unreadable"),  # not UTF-8
    ],
)
def test_no_debug_server_behind_a_missing_or_short_password(
    tmp_path: Path, content: bytes | None, named: str
) -> None:
    path: str | None = None
    if content is not None:
        (tmp_path / "password").write_bytes(content)
        path = str(tmp_path / "password")
    with pytest.raises(TaskFailed) as refused:
        start_debug_server(8000, path, tmp_path)
    assert refused.value.code is ExitCode.DEBUG_PASSWORD_MISSING
    assert "at least 16 characters" in refused.value.message
    assert named in refused.value.message
    assert SHORT not in refused.value.message


def test_a_password_file_that_is_not_there_is_named(tmp_path: Path) -> None:
    """The operator mounts the Secret as optional: a Secret deleted since admission leaves no file."""
    with pytest.raises(TaskFailed) as refused:
        read_password(str(tmp_path / "gone"))
    assert refused.value.code is ExitCode.DEBUG_PASSWORD_MISSING
    assert f"{tmp_path / 'gone'} unreadable (No such file or directory)" in refused.value.message


def test_the_password_is_the_files_exact_content(tmp_path: Path) -> None:
    """Admission measured the Secret's bytes; the runner takes them as they are, spaces and newline too."""
    (tmp_path / "password").write_text(" correct-horse-battery\n")
    assert read_password(str(tmp_path / "password")) == " correct-horse-battery\n"
