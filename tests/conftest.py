"""Suite-wide pytest setup: tests under tests/integration/ are marked ``cluster``.

So ``pytest tests/unit`` (or ``-m "not cluster"``) never needs a cluster, and the integration fixtures in
tests/integration/conftest.py start one only when a cluster test runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.cluster)
            # Tests that drive fake pods need KWOK nodes; the marker makes them skip elsewhere.
            if "fake_pods" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.kwok)
