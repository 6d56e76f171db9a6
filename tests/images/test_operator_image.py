"""The operator image that `make images` builds, read from its OCI archive: what it holds, and that it starts.

No cluster and no real node: the archive's layers are unpacked in order (OCI whiteouts applied) into a
directory, which is then checked file by file and run through a chroot as the image's user, the way the
builder itself runs its layers (tests/integration/test_deploy.py runs the same image as installed pods).
Building the images needs root, as `make images` does; the build is a no-op when the tree's images exist.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from support.ci import missing

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = REPO_ROOT / "hack" / "images.sh"
USER = "65532:65532"

# Tools a shell session or a package install would reach for: none may be on the image's PATH.
SHELLS = ("sh", "bash", "dash", "rbash", "busybox", "zsh", "ash")
PACKAGE_TOOLS = ("pip", "pip3", "pip3.11", "apt", "apt-get", "apt-cache", "dpkg", "dpkg-deb", "dpkg-query")
SHELL_TOOLS = (
    "ls", "cat", "cp", "mv", "rm", "ln", "chmod", "chown", "env", "echo", "sed", "grep", "awk", "mawk",
    "find", "xargs", "tar", "gzip", "head", "tail", "sort", "mount", "su", "login", "perl", "id", "kill",
    "ps", "mktemp", "openssl", "curl", "wget", "nc",
)  # fmt: skip

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def archive() -> Path:
    if os.geteuid() != 0:
        missing("building the images needs root (debootstrap, chroot and mounts), as make images does")
    built = subprocess.run([str(IMAGES), "build"], capture_output=True, text=True, check=False)
    assert built.returncode == 0, f"make images failed:\n{built.stdout[-2000:]}{built.stderr[-3000:]}"
    path = subprocess.run([str(IMAGES), "archive", "operator"], capture_output=True, text=True, check=True)
    return Path(path.stdout.strip())


def apply_layer(layer: tarfile.TarFile, root: Path) -> None:
    """One layer over ``root``: its whiteouts delete from the layers below, then its files are written."""
    members = []
    for member in layer.getmembers():
        path = PurePosixPath(member.name)
        if path.name == ".wh..wh..opq":  # an opaque directory: nothing below shows through
            for child in (root / path.parent).iterdir() if (root / path.parent).is_dir() else ():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        elif path.name.startswith(".wh."):
            gone = root / path.parent / path.name.removeprefix(".wh.")
            shutil.rmtree(gone) if gone.is_dir() and not gone.is_symlink() else gone.unlink(missing_ok=True)
        else:
            members.append(member)
    layer.extractall(root, members=members, numeric_owner=True, filter="fully_trusted")


def unpack(archive: Path, root: Path) -> dict[str, Any]:
    """The image's layers unpacked into ``root``, bottom first; its runtime config returned."""
    with tarfile.open(archive) as oci:

        def blob(digest: str) -> Any:
            return oci.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")

        (entry,) = json.load(oci.extractfile("index.json"))["manifests"]  # type: ignore[arg-type]
        manifest = json.load(blob(entry["digest"]))
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=blob(layer["digest"]), mode="r:gz") as tar:
                apply_layer(tar, root)
        config: dict[str, Any] = json.load(blob(manifest["config"]["digest"]))["config"]
        return config


@pytest.fixture(scope="module")
def image(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("operator-rootfs")
    return root, unpack(archive, root)


def path_dirs(config: dict[str, Any]) -> list[str]:
    env = dict(e.split("=", 1) for e in config["Env"])
    return env["PATH"].split(":")


def on_path(root: Path, config: dict[str, Any], name: str) -> list[str]:
    """Where ``name`` is on the image's PATH (a dangling link counts: it is still a name to exec)."""
    return [f"{d}/{name}" for d in path_dirs(config) if os.path.lexists(root / d.lstrip("/") / name)]


def run_as_image_user(root: Path, config: dict[str, Any], *command: str) -> subprocess.CompletedProcess[str]:
    env = dict(e.split("=", 1) for e in config["Env"])
    return subprocess.run(
        ["chroot", f"--userspec={config['User']}", str(root), *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_image_runs_its_entrypoint_as_the_unprivileged_user(image: tuple[Path, dict[str, Any]]) -> None:
    root, config = image
    assert config["User"] == USER
    assert config["Entrypoint"] == ["assay-operator"]
    (entrypoint, *_) = on_path(root, config, "assay-operator")
    assert os.access(root / entrypoint.lstrip("/"), os.X_OK), entrypoint


def test_the_image_holds_no_pip_and_no_package_manager(image: tuple[Path, dict[str, Any]]) -> None:
    root, config = image
    assert {tool: where for tool in PACKAGE_TOOLS if (where := on_path(root, config, tool))} == {}
    found = [
        str(path.relative_to(root))
        for pattern in ("**/site-packages/pip", "**/site-packages/setuptools", "**/site-packages/wheel",
                        "**/ensurepip", "**/pip-*.whl", "**/setuptools-*.whl", "**/pip-*.dist-info")
        for path in root.glob(pattern)
    ]  # fmt: skip
    assert found == []
    for gone in ("usr/lib/apt", "usr/lib/dpkg", "var/lib/dpkg/info", "etc/apt"):
        assert not (root / gone).exists(), gone


def test_the_image_holds_no_shell_and_no_shell_tools(image: tuple[Path, dict[str, Any]]) -> None:
    root, config = image
    assert {tool: where for tool in SHELLS + SHELL_TOOLS if (where := on_path(root, config, tool))} == {}
    assert run_as_image_user(root, config, "/bin/sh", "-c", "true").returncode != 0


def test_python_runs_as_the_image_user_without_pip(image: tuple[Path, dict[str, Any]]) -> None:
    """The same probe as the installed pods' (tests/integration/test_deploy.py)."""
    root, config = image
    probe = (
        "import importlib.util, os, sys; print(os.getuid(), os.getgid(), "
        "'%d.%d' % sys.version_info[:2], importlib.util.find_spec('pip') is None)"
    )
    ran = run_as_image_user(root, config, "python", "-c", probe)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [*USER.split(":"), "3.11", "True"]


def test_the_operator_starts(image: tuple[Path, dict[str, Any]]) -> None:
    """Its entrypoint parses its options, and everything the operator imports at start loads: no library
    it needs went with the tools."""
    root, config = image
    helped = run_as_image_user(root, config, *config["Entrypoint"], "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--peering" in helped.stdout
    imports = "import assay.controller.main, assay.admission, kopf, ssl, sqlite3, ctypes, uuid; print('ok')"
    loaded = run_as_image_user(root, config, "python", "-c", imports)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "ok", loaded.stderr
