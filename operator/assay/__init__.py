"""Assay: model evaluations as Kubernetes resources.

The SDK entry point is :class:`assay.Client` (see ``assay.client``).
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.client import Client

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import assay` stays cheap (the runner and the operator import it too); the kubernetes client
    # loads only when a program asks for assay.Client.
    if name == "Client":
        from assay.client import Client

        return Client
    raise AttributeError(f"module 'assay' has no attribute {name!r}")
