"""The Dockerfile installs what `make venv` installs, from the same pins, and its final images stay lean.

No Docker engine runs here, so these checks read the Dockerfile as data; hadolint (in `make lint`) checks
its style.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINAL_TARGETS = ("operator", "runner", "runner-examples")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, keyword: str) -> list[str]:
        return [value for key, value in self.instructions if key == keyword]


def parse_stages(text: str) -> dict[str, Stage]:
    """Split a Dockerfile into stages of (INSTRUCTION, arguments), with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else f"stage{len(stages)}"
            current = stages[name] = Stage(name, base)
        elif current is not None:
            current.instructions.append((keyword, rest.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return parse_stages((ROOT / "Dockerfile").read_text())


def pip_installs(stages: dict[str, Stage]) -> list[list[str]]:
    commands = []
    for stage in stages.values():
        for run in stage.values("RUN"):
            for command in run.split("&&"):
                words = shlex.split(command)
                if "pip" in " ".join(words[:1]) and "install" in words:
                    commands.append(words)
    return commands


def test_the_default_target_is_the_operator(stages: dict[str, Stage]) -> None:
    assert list(stages)[-1] == "operator"


def test_base_image_is_pinned_to_an_exact_python_3_11_slim_release(stages: dict[str, Stage]) -> None:
    for stage in stages.values():
        if stage.base in stages:  # FROM another stage
            continue
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", stage.base), stage.base


def test_every_pip_install_uses_the_projects_constraints(stages: dict[str, Stage]) -> None:
    installs = pip_installs(stages)
    assert installs, "expected pip installs in the build stages"
    for words in installs:
        assert "-c" in words and words[words.index("-c") + 1] == "constraints.txt", words


def test_installed_extras_exist_in_pyproject(stages: dict[str, Stage]) -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for words in pip_installs(stages):
        for target in words:
            match = re.fullmatch(r"\.\[([\w,]+)\]", target)
            if match:
                assert set(match.group(1).split(",")) <= extras, target


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_images_run_as_a_numeric_non_root_user(stages: dict[str, Stage], target: str) -> None:
    stage, users = stages[target], stages[target].values("USER")
    while not users and stage.base in stages:  # USER is inherited from a parent stage
        stage = stages[stage.base]
        users = stage.values("USER")
    assert users, f"{target} sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_images_build_nothing(stages: dict[str, Stage], target: str) -> None:
    """No RUN in a final stage: compilers, apt and pip caches stay in the build stages."""
    assert stages[target].values("RUN") == []
    assert all(source.startswith("--from=build-") for source in stages[target].values("COPY"))


def test_operator_entrypoint_is_the_console_script(stages: dict[str, Stage]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "assay-operator" in scripts
    assert stages["operator"].values("ENTRYPOINT") == ['["assay-operator"]']


def test_kind_up_builds_targets_the_dockerfile_has(stages: dict[str, Stage]) -> None:
    """hack/kind-up.sh cannot run here (no Docker); at least it parses and names real targets."""
    import subprocess

    script = ROOT / "hack" / "kind-up.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    targets = re.findall(r"--target ([\w-]+)", script.read_text())
    assert targets and set(targets) <= set(stages), targets
