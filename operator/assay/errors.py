"""Errors the SDK raises: each carries one line that says what went wrong and what to do about it.

The CLI prints ``str(error)`` and exits with the class' ``exit_code`` (1 for anything else; 2 stays click's
code for bad command-line usage), so scripts can tell "not found" from "cluster down".
"""

from __future__ import annotations


class AssayError(Exception):
    """Base of every error :class:`assay.Client` raises on purpose."""

    exit_code = 1


class NotFound(AssayError):
    """The evaluation (or pool, or task) does not exist, or the cluster lacks the Assay CRDs."""

    exit_code = 3


class Forbidden(AssayError):
    """The cluster refused the request: RBAC forbids it, or the credentials are not accepted."""

    exit_code = 4


class ClusterUnreachable(AssayError):
    """No cluster to talk to: no kubeconfig, an unknown context, or the API server does not answer."""

    exit_code = 5


class Invalid(AssayError):
    """The cluster or the client rejected an object as invalid, or a request is ambiguous."""

    exit_code = 6


class AlreadyExists(AssayError):
    """An object of that name already exists."""

    exit_code = 7


class WaitTimeout(AssayError, TimeoutError):
    """:meth:`assay.Client.wait` gave up before the evaluation reached a terminal phase."""

    exit_code = 8
