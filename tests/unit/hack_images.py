"""The Python helpers of hack/images/ (scripts, not a package), imported by path for their unit tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

IMAGES_DIR = Path(__file__).resolve().parents[2] / "hack" / "images"


def load(name: str) -> ModuleType:
    """hack/images/NAME.py as the module NAME."""
    spec = importlib.util.spec_from_file_location(name, IMAGES_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
