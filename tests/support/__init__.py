"""Test support for Assay's integration tests: find or start a cluster, drive KWOK fake pods.

Importable as ``support`` (pyproject's ``pythonpath = ["tests"]``). Independent of the ``assay`` package, so
it tests Assay rather than mirrors it.

* :mod:`support.cluster` — which cluster the session uses (the one place that decides), and starting/stopping
  the local one;
* :mod:`support.fake_pods` — :class:`FakePods`, waits for pods on KWOK nodes and makes them succeed or fail
  with a chosen exit code and termination message (the annotations of ``hack/kwok/stages/``);
* :mod:`support.wait` — polling with a timeout and a message that says what never happened.
"""

from support.cluster import (
    ClusterUnavailableError,
    LocalCluster,
    kubeconfig_answers,
    kubectl_binary,
    session_cluster,
    stop_session_cluster,
)
from support.fake_pods import (
    AUTO_COMPLETE_AFTER_ANNOTATION,
    AUTO_COMPLETE_LABEL,
    EXIT_CODE_ANNOTATION,
    MESSAGE_ANNOTATION,
    OUTCOME_ANNOTATION,
    REASON_ANNOTATION,
    FakePods,
    fake_node_names,
    outcome_annotations,
    scheduling_message,
    terminated_state,
)
from support.wait import WaitTimeoutError, wait_until

__all__ = [
    "AUTO_COMPLETE_AFTER_ANNOTATION",
    "AUTO_COMPLETE_LABEL",
    "EXIT_CODE_ANNOTATION",
    "MESSAGE_ANNOTATION",
    "OUTCOME_ANNOTATION",
    "REASON_ANNOTATION",
    "ClusterUnavailableError",
    "FakePods",
    "LocalCluster",
    "WaitTimeoutError",
    "fake_node_names",
    "kubeconfig_answers",
    "kubectl_binary",
    "outcome_annotations",
    "scheduling_message",
    "session_cluster",
    "stop_session_cluster",
    "terminated_state",
    "wait_until",
]
