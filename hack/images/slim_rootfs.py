"""The paths a root filesystem loses to become the operator's: one list (operator-slim.txt), two builders.

  slim_rootfs.py list ROOT SPEC     the paths to leave out, one per line as ``./relative/path`` (what
                                    hack/images.sh gives tar to exclude from the operator's base layer)
  slim_rootfs.py remove ROOT SPEC   removes them (the Dockerfile's build-operator-root stage, ROOT=/)

SPEC lines (``#`` starts a comment): ``package NAME`` leaves out every file dpkg lists for the package, with
the directories left empty and the symbolic links that led to its files (/usr/bin/awk to mawk, through
/etc/alternatives); ``path GLOB`` leaves out a path no package lists, with everything under it. A package
that is not installed is skipped, so one SPEC serves Debian's python3 and the Python image alike. Paths are
resolved inside ROOT: /bin/bash of a merged-/usr system is /usr/bin/bash. Runs on the image's own Python.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path, PurePosixPath

# Mount points of a running system (the Dockerfile's build stage): never walked.
VIRTUAL = frozenset({"proc", "sys", "dev"})
MAX_LINKS = 40  # as the kernel's own limit on a chain of symbolic links


def read_spec(text: str) -> tuple[list[str], list[str]]:
    """The package names and path globs of a SPEC."""
    packages: list[str] = []
    globs: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, value = line.partition(" ")
        if kind == "package" and value.strip():
            packages.append(value.strip())
        elif kind == "path" and value.strip().startswith("/"):
            globs.append(value.strip())
        else:
            raise SystemExit(f"line {number}: {raw!r} is neither 'package NAME' nor 'path /GLOB'")
    return packages, globs


def resolve(root: Path, path: str, *, follow_last: bool) -> PurePosixPath | None:
    """``path`` (absolute, inside ``root``) with its symbolic links followed inside ``root``; None for a loop."""
    parts = list(PurePosixPath(path).parts[1:])
    done = PurePosixPath("/")
    hops = 0
    while parts:
        name = parts.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            done = done.parent
            continue
        here = done / name
        real = root / here.relative_to("/")
        if (parts or follow_last) and real.is_symlink():
            hops += 1
            if hops > MAX_LINKS:
                return None
            target = PurePosixPath(os.readlink(real))
            parts = list(target.parts[1:] if target.is_absolute() else target.parts) + parts
            done = PurePosixPath("/") if target.is_absolute() else done
            continue
        done = here
    return done


def package_lists(root: Path, package: str) -> list[Path]:
    """dpkg's file lists of ``package`` (``NAME.list`` or ``NAME:ARCH.list``); none if it is not installed."""
    info = root / "var" / "lib" / "dpkg" / "info"
    return sorted(info.glob(f"{package}.list")) + sorted(info.glob(f"{package}:*.list"))


def walk(root: Path) -> list[PurePosixPath]:
    """Every path under ``root`` as an absolute path inside it, symbolic links not followed."""
    found: list[PurePosixPath] = []
    for dirpath, dirnames, filenames in os.walk(root):
        inside = PurePosixPath("/") / Path(dirpath).relative_to(root).as_posix()
        if inside == PurePosixPath("/"):
            dirnames[:] = [d for d in dirnames if d not in VIRTUAL]
        found += [inside / name for name in dirnames + filenames]
    return found


def removals(root: Path, spec: str) -> list[PurePosixPath]:
    """What ``spec`` leaves out of ``root``, each path once (nothing under a path already listed), sorted."""
    packages, globs = read_spec(spec)
    gone: set[PurePosixPath] = set()
    owned_dirs: set[PurePosixPath] = set()
    for package in packages:
        for listing in package_lists(root, package):
            for line in listing.read_text().splitlines():
                if not line.startswith("/") or line == "/.":
                    continue
                path = resolve(root, line, follow_last=False)
                if path is None:
                    continue
                real = root / path.relative_to("/")
                if real.is_dir():  # a link to a directory too: /bin of a merged-/usr system is /usr/bin
                    owned_dirs.add(resolve(root, line, follow_last=True) or path)
                elif real.is_symlink() or real.exists():
                    gone.add(path)
    for pattern in globs:
        gone.update(PurePosixPath("/") / p.relative_to(root).as_posix() for p in root.glob(pattern[1:]))

    def removed(path: PurePosixPath) -> bool:
        return any(p in gone for p in (path, *path.parents))

    everything = walk(root)
    # Links to what goes go too (awk -> /etc/alternatives/awk -> /usr/bin/mawk), chains included.
    links = [p for p in everything if (root / p.relative_to("/")).is_symlink()]
    changed = True
    while changed:
        changed = False
        for link in links:
            target = resolve(root, str(link), follow_last=True)
            if link not in gone and target is not None and removed(target):
                gone.add(link)
                changed = True
    # A package's directory goes when nothing is left in it (deepest first: /usr/share/doc/bash, then up).
    for directory in sorted(owned_dirs, key=lambda p: len(p.parts), reverse=True):
        real = root / directory.relative_to("/")
        if all(removed(directory / name) for name in os.listdir(real)):
            gone.add(directory)
    return sorted(p for p in gone if not any(parent in gone for parent in p.parents))


def remove(root: Path, paths: list[PurePosixPath]) -> None:
    for path in paths:
        real = root / path.relative_to("/")
        if real.is_dir() and not real.is_symlink():
            shutil.rmtree(real)
        else:
            real.unlink()


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] not in ("list", "remove"):
        raise SystemExit(__doc__)
    root = Path(argv[1])
    paths = removals(root, Path(argv[2]).read_text())
    if argv[0] == "list":
        sys.stdout.write("".join(f".{path}\n" for path in paths))
    else:
        remove(root, paths)


if __name__ == "__main__":
    main(sys.argv[1:])
