"""The Dockerfile installs what `make venv` installs, from the same pins, and its final images stay lean.

No Docker engine runs here, so these checks read the Dockerfile as data; hadolint (in `make lint`) checks
its style.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINAL_TARGETS = ("operator", "runner", "runner-examples")
EMPTY_IMAGE = "scratch"


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
        if stage.base in stages or stage.base == EMPTY_IMAGE:  # FROM another stage, or nothing
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


# ---- the Dockerfile and `make images` (hack/images.sh) make the same images ------------------------------
# hack/images.sh builds on Debian's python3 (no Docker here), the Dockerfile on python:3.11.x-slim-<suite>.
# Each local image against the Dockerfile target it stands for (the local runner carries the examples' extra).
LOCAL_IMAGES = {"operator": "operator", "runner": "runner-examples"}
# Debian's python3 per release (a fact of Debian, not of this project).
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


def local_image_config(image: str) -> dict[str, Any]:
    """The OCI config hack/images.sh writes for ``image`` (its `config` action: no build, no root)."""
    import subprocess

    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "images.sh"), "config", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config: dict[str, Any] = json.loads(out)
    return config


def inherited(stages: dict[str, Stage], target: str, keyword: str) -> list[str]:
    """The values of ``keyword`` in ``target`` or, if it sets none, in the stage it is FROM."""
    stage: Stage | None = stages[target]
    while stage is not None:
        if values := stage.values(keyword):
            return values
        stage = stages.get(stage.base)
    return []


def dockerfile_env(stages: dict[str, Stage], target: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in inherited(stages, target, "ENV"):
        for word in shlex.split(line):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def build_stage_extras(stages: dict[str, Stage], target: str) -> set[str]:
    """The extras the build stage that ``target`` copies /opt/assay from installs (`'.[a,b]'`)."""
    (source,) = [c for c in stages[target].values("COPY") if c.endswith("/opt/assay /opt/assay")]
    build = stages[source.split()[0].removeprefix("--from=")]
    (match,) = re.findall(r"'\.\[([\w,]+)\]'", " ".join(build.values("RUN")))
    return set(match.split(","))


@pytest.mark.parametrize(("image", "target"), LOCAL_IMAGES.items())
def test_the_local_image_runs_as_the_dockerfile_target(
    stages: dict[str, Stage], image: str, target: str
) -> None:
    config = local_image_config(image)
    assert config.get("User") == inherited(stages, target, "USER")[-1]
    for keyword, key in (("ENTRYPOINT", "Entrypoint"), ("CMD", "Cmd")):
        values = inherited(stages, target, keyword)
        expected = json.loads(values[-1]) if values else None
        assert config.get(key) == expected, keyword
    workdir = inherited(stages, target, "WORKDIR")
    assert config.get("WorkingDir") == (workdir[-1] if workdir else None)


@pytest.mark.parametrize(("image", "target"), LOCAL_IMAGES.items())
def test_the_local_image_has_the_dockerfile_targets_environment(
    stages: dict[str, Stage], image: str, target: str
) -> None:
    local = dict(e.split("=", 1) for e in local_image_config(image)["Env"])
    for key, value in dockerfile_env(stages, target).items():
        if value.endswith(":$PATH"):  # the venv first, then the base image's PATH
            assert local[key].startswith(value.removesuffix("$PATH")), key
        else:
            assert local.get(key) == value, key


@pytest.mark.parametrize(("image", "target"), LOCAL_IMAGES.items())
def test_the_local_image_installs_the_dockerfile_targets_extras(
    stages: dict[str, Stage], image: str, target: str
) -> None:
    labels = local_image_config(image)["Labels"]
    assert set(labels["dev.assay.extras"].split(",")) == build_stage_extras(stages, target)


@pytest.mark.parametrize("image", LOCAL_IMAGES)
def test_the_local_image_has_the_dockerfiles_python(stages: dict[str, Stage], image: str) -> None:
    labels = local_image_config(image)["Labels"]
    suite = labels["dev.assay.debian-suite"]
    (base,) = {s.base for s in stages.values() if s.base not in stages and s.base != EMPTY_IMAGE}
    match = re.fullmatch(r"python:(\d+\.\d+)\.\d+-slim-(\w+)(@.*)?", base)
    assert match, base
    python, tag_suite = match.group(1, 2)
    assert tag_suite == suite
    assert DEBIAN_PYTHON[suite] == python


def test_the_operator_image_has_no_pip(stages: dict[str, Stage]) -> None:
    """Its venv is made without pip, and the base image's own pip is removed before the final stage."""
    assert "--without-pip" in " ".join(stages["build-operator"].values("RUN"))
    runtime = stages[operator_root_stage(stages)]
    assert runtime.base not in stages, "the operator's root filesystem is the Python image's"
    assert re.search(r"pip uninstall .*\bpip\b", " ".join(runtime.values("RUN")))
    install = (ROOT / "hack" / "images" / "install-assay.sh").read_text()
    assert "--without-pip" in install
    assert re.search(r"ASSAY_VENV_PIP=no", (ROOT / "hack" / "images.sh").read_text())


def operator_root_stage(stages: dict[str, Stage]) -> str:
    """The stage whose whole root filesystem the operator image copies (`COPY --from=STAGE / /`)."""
    (stage,) = [
        c.split()[0].removeprefix("--from=") for c in stages["operator"].values("COPY") if c.endswith(" / /")
    ]
    return stage


def test_the_operator_image_is_slimmed_by_the_list_make_images_reads(stages: dict[str, Stage]) -> None:
    """Distroless-style: an empty image given a root filesystem that slim_rootfs.py removed SLIM_LIST from,
    the same list and script `make images` leaves out of its operator image (tests/images checks that image).
    """
    slim_list, script = "hack/images/operator-slim.txt", "hack/images/slim_rootfs.py"
    assert stages["operator"].base == EMPTY_IMAGE
    run = " ".join(stages[operator_root_stage(stages)].values("RUN"))
    mount = re.search(r"--mount=type=bind,source=(\S+),target=(\S+)", run)
    assert mount, run
    source, target = mount.groups()
    assert f"{target}/{Path(script).name} remove / {target}/{Path(slim_list).name}" in run
    assert Path(script).parent == Path(source)
    context = (ROOT / ".dockerignore").read_text().splitlines()
    assert {f"!{slim_list}", f"!{script}"} <= set(context), "the build context lacks the list or the script"
    images = (ROOT / "hack" / "images.sh").read_text()
    assert f'"$CTX/{script}" list' in images and f'"$CTX/{slim_list}"' in images
