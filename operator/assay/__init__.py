"""Assay: model evaluations as Kubernetes resources.

The SDK entry point is :class:`assay.Client` (see ``assay.client``).
"""

__version__ = "0.1.0"
