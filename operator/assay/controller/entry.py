"""The ``assay-operator`` program: the operator, without the synchronous Kubernetes client in memory.

kopf imports every Kubernetes client library it finds, to recognise their objects; the operator talks
through ``kubernetes_asyncio`` only, and the synchronous ``kubernetes`` package (installed for the CLI and
SDK) would add its thousand model classes, about 35 MiB, to the operator's memory for nothing. Marking it
absent before kopf is imported makes kopf skip it (``sys.modules[name] = None`` is how Python spells
"this module cannot be imported").
"""

from __future__ import annotations

import sys

UNUSED_CLIENTS = ("kubernetes", "pykube")


def main() -> int:
    for name in UNUSED_CLIENTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: importing it fails at once
    from assay.controller.main import main as run_operator

    return run_operator()
