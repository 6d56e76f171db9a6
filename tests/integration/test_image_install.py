"""The operator image's install step, run here for real: no Docker engine on this machine, so the build
stage's own RUN line is executed in a clean directory holding exactly the build context the Dockerfile copies
(pyproject.toml, constraints.txt, README.md, operator/), with /opt/assay moved to a temporary path.

It proves that `pip install -c constraints.txt .` resolves from the pins alone and that the image's
entrypoint runs from the result, without any test or build dependency.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTEXT_FILES = ("pyproject.toml", "constraints.txt", "README.md")

pytestmark = pytest.mark.timeout(600)


def build_stage_run(stage: str) -> str:
    """The RUN command of a Dockerfile stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    body = text.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
    (run,) = [line[4:].strip() for line in body.splitlines() if line.startswith("RUN ")]
    return run


def test_the_operator_image_install_works_from_the_pins_alone(tmp_path: Path) -> None:
    context = tmp_path / "src"
    context.mkdir()
    for name in CONTEXT_FILES:
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(
        ROOT / "operator", context / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    prefix = tmp_path / "opt-assay"

    command = build_stage_run("build-operator").replace("/opt/assay", str(prefix))
    # The image's `python` and `pip` are the base image's; here, this interpreter (the same 3.11).
    python = shlex.quote(sys.executable)
    command = re.sub(r"(^|&& )python ", rf"\1{python} ", command)
    command = re.sub(r"(^|&& )pip ", rf"\1{python} -m pip ", command)
    built = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=context,
        capture_output=True,
        text=True,
        # pip's wheel cache (under HOME) is kept: a second run downloads nothing.
        env={"PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HOME": str(Path.home())},
        check=False,
        timeout=540,
    )
    assert built.returncode == 0, f"{command}\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"

    entrypoint = subprocess.run(
        [str(prefix / "bin" / "assay-operator"), "--help"], capture_output=True, text=True, check=False
    )
    assert entrypoint.returncode == 0, entrypoint.stderr
    assert "--peering" in entrypoint.stdout

    installed = {
        path.name.split("-")[0].lower()
        for path in (prefix / "lib").glob("python3*/site-packages/*.dist-info")
    }
    assert {"kopf", "cryptography", "prometheus_client"} <= installed
    assert not installed & {"pytest", "ruff", "mypy", "pip", "setuptools"}, "test or build tools in the image"
