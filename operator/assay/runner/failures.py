"""A task failure with the exit code the controller turns into a reason."""

from __future__ import annotations

from assay.contract import ExitCode


class TaskFailed(Exception):
    """The task cannot go on; ``code`` says why (see :class:`assay.contract.ExitCode`)."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.reason}: {self.message}"
