"""Suite-wide pytest setup: the markers that select suites, and the cluster the session tests against.

The Makefile's test targets select suites with ``-m`` (markers registered in pyproject.toml). Applied here:

* ``unit``: tests/unit and benchmarks/tests (pure functions: no cluster, no runner process);
* ``cluster``: tests/integration (a Kubernetes cluster), so ``-m "not cluster"`` never needs one;
* ``kwok``: tests that drive fake pods (the ``fake_pods`` fixture): they skip on clusters without KWOK nodes;
* the suite of the package a module tests, read from its name ``test_<package>_<module>.py``
  (:data:`SUITE_OF_PACKAGE`), wherever it lives; tests/runner is all ``runner``.

Modules mark themselves with the rest: ``faults`` (reliability and security), ``chaos`` (control-plane faults,
on a cluster of their own), ``realnode``, ``browser``, ``kueue``.

When a selected test is marked ``cluster``, the cluster is decided (and the local one started) once, before
the first test, outside any test's timeout and with the start-up output on the terminal; a cluster started
here is stopped when the session ends (support.cluster).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from support import ClusterUnavailableError, session_cluster, stop_session_cluster

TESTS_DIR = Path(__file__).parent
UNIT_DIRS = (TESTS_DIR / "unit", TESTS_DIR.parent / "benchmarks" / "tests")
INTEGRATION_DIR = TESTS_DIR / "integration"
RUNNER_DIR = TESTS_DIR / "runner"

# make test-<suite> selects -m <suite>.
SUITE_OF_PACKAGE = {
    "runner": "runner",
    "admission": "operator",
    "controller": "operator",
    "operator": "operator",
    "render": "operator",
    "rollup": "operator",
    "attempts": "cli",
    "cli": "cli",
    "client": "cli",
    "compare": "cli",
    "sdk": "cli",
}


def _suite_of(path: Path) -> str | None:
    if RUNNER_DIR in path.parents:
        return "runner"
    package = path.stem.removeprefix("test_").split("_")[0]
    return SUITE_OF_PACKAGE.get(package)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(directory in item.path.parents for directory in UNIT_DIRS):
            item.add_marker(pytest.mark.unit)
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.cluster)
            if "fake_pods" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.kwok)
        suite = _suite_of(item.path)
        if suite is not None:
            item.add_marker(suite)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("cluster") for item in session.items):
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    shown = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with shown:
        try:
            session_cluster(session.config)
        except ClusterUnavailableError as error:
            pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        stop_session_cluster(session.config)
    except ClusterUnavailableError as error:
        # A cluster that did not stop cleanly fails the run, whatever the tests did.
        session.config.get_terminal_writer().line(f"error: {error}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
