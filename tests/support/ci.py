"""What a test does when something it needs is missing: skip with the reason, except in CI.

CI (``CI=true``) installs everything the suite needs (the real node, the browser), so there a missing piece
is a failure to see, never a skip to overlook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest


def missing(reason: str, environ: Mapping[str, str] = os.environ) -> NoReturn:
    """Skips the calling test with ``reason``; in CI, fails it."""
    if environ.get("CI") == "true":
        pytest.fail(f"CI runs this test, but {reason}", pytrace=False)
    pytest.skip(reason)
