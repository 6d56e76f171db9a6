"""hack/images/slim_rootfs.py on a small merged-/usr root: what one SPEC leaves out of the operator image.

The real list on the real root filesystems is checked in tests/images (the built operator image).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hack_images import load

slim_rootfs = load("slim_rootfs")

SPEC = """
# the shell and awk go; a package this root lacks is no error
package bash
package mawk
package not-installed
path /var/cache/apt*
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """/bin -> usr/bin as bookworm has it; dpkg lists /bin/bash where the file is /usr/bin/bash."""
    files = {
        "usr/bin/bash": "", "usr/bin/mawk": "", "usr/bin/python3.11": "",
        "usr/share/doc/bash/copyright": "", "usr/share/doc/python3.11/copyright": "",
        "var/cache/apt/pkgcache.bin": "", "var/cache/apt-extra/x": "", "var/lib/dpkg/status": "",
        "var/lib/dpkg/info/bash.list": "/.\n/bin\n/bin/bash\n/usr\n/usr/share\n/usr/share/doc\n"
        "/usr/share/doc/bash\n/usr/share/doc/bash/copyright\n",
        "var/lib/dpkg/info/mawk:amd64.list": "/.\n/usr\n/usr/bin\n/usr/bin/mawk\n",
        "var/lib/dpkg/info/python3.11.list": "/.\n/usr\n/usr/bin\n/usr/bin/python3.11\n/usr/share/doc\n"
        "/usr/share/doc/python3.11\n/usr/share/doc/python3.11/copyright\n",
    }  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "etc" / "alternatives").mkdir(parents=True)
    (tmp_path / "etc" / "alternatives" / "awk").symlink_to("/usr/bin/mawk")
    (tmp_path / "usr" / "bin" / "awk").symlink_to("/etc/alternatives/awk")
    (tmp_path / "usr" / "bin" / "python3").symlink_to("python3.11")
    return tmp_path


def test_it_lists_the_packages_files_their_links_and_emptied_directories(root: Path) -> None:
    listed = [str(p) for p in slim_rootfs.removals(root, SPEC)]
    assert listed == [
        "/etc/alternatives/awk",
        "/usr/bin/awk",
        "/usr/bin/bash",
        "/usr/bin/mawk",
        "/usr/share/doc/bash",
        "/var/cache/apt",
        "/var/cache/apt-extra",
    ]


def test_remove_leaves_what_other_packages_need(root: Path) -> None:
    slim_rootfs.main(["remove", str(root), str(write(root.parent / "spec", SPEC))])
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
    assert left == [
        "bin",
        "usr/bin/python3",
        "usr/bin/python3.11",
        "usr/share/doc/python3.11/copyright",
        "var/lib/dpkg/info/bash.list",
        "var/lib/dpkg/info/mawk:amd64.list",
        "var/lib/dpkg/info/python3.11.list",
        "var/lib/dpkg/status",
    ]


def test_the_list_form_is_what_tar_excludes(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slim_rootfs.main(["list", str(root), str(write(root.parent / "spec", "package bash\n"))])
    assert capsys.readouterr().out == "./usr/bin/bash\n./usr/share/doc/bash\n"


@pytest.mark.parametrize("line", ["bash", "package", "path relative/glob", "remove /usr/bin/bash"])
def test_a_line_it_cannot_read_stops_it(root: Path, line: str) -> None:
    with pytest.raises(SystemExit, match="line 2"):
        slim_rootfs.removals(root, f"package mawk\n{line}\n")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_remove_leaves_what_the_list_leaves_tar_to_write(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The Dockerfile's `remove` and make images' `list` (tar's excludes) make the same tree."""
    listed = set(slim_rootfs.removals(root, SPEC))
    kept_by_list = {p for p in slim_rootfs.walk(root) if not listed & {p, *p.parents}}
    copy = tmp_path_factory.mktemp("removed") / "root"
    shutil.copytree(root, copy, symlinks=True)
    slim_rootfs.remove(copy, sorted(listed))
    assert set(slim_rootfs.walk(copy)) == kept_by_list
