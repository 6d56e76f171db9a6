"""docs/architecture.md keeps a line for every module of the package (the console as one directory)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "assay"
DIRECTORIES_AS_ONE = {"console"}  # a web application of its own: one line for the directory


def test_every_module_has_a_line_in_the_package_map() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"^\| ([^|]+) \|", text, flags=re.MULTILINE))
    listed = {name.strip("` ") for cell in named for name in cell.split(",")}
    modules = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in DIRECTORIES_AS_ONE
    }
    missing = modules - listed
    assert not missing, f"add a line to docs/architecture.md for {sorted(missing)}"
    assert {f"{d}/" for d in DIRECTORIES_AS_ONE} <= listed
