"""The assay-operator program keeps the synchronous Kubernetes client (CLI/SDK only) out of its memory."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from assay.controller import entry
sys.argv = ["assay-operator", "--help"]
try:
    entry.main()
except SystemExit:
    pass
loaded = lambda name: sys.modules.get(name) is not None
print(loaded("kopf"), loaded("kubernetes_asyncio"), loaded("kubernetes"))
"""


def test_the_operator_loads_kopf_and_the_async_client_but_not_the_sync_one() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-3:] == ["True", "True", "False"]
