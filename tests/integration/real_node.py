"""The local cluster's real node (hack/node-up.sh), for the tests that run real containers on it.

Its facts are the scripts' (hack/node/paths.sh, hack/node/kubelet.yaml.in): the node says how its start
went in ``.cluster/real-node``, carries the pool label ``assay.dev/pool-node=local`` and the taint
``assay.dev/real-node=true:NoSchedule``, and runs images built by ``make images`` (never pulled).
"""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from support.ci import missing
from support.cluster import REPO_ROOT

NODE_STATUS_FILE = REPO_ROOT / ".cluster" / "real-node"
POOL_LABEL = ("assay.dev/pool-node", "local")
REAL_NODE_TAINT = client.V1Toleration(key="assay.dev/real-node", operator="Exists", effect="NoSchedule")
RUNNER_IMAGE = "assay.local/runner:dev"


def why_no_real_node(status_file: Path = NODE_STATUS_FILE) -> str:
    """Why the cluster has no Ready real node, as a skip reason."""
    if not status_file.is_file():
        return "no real node in this cluster (hack/node-up.sh did not run: ASSAY_REAL_NODE=off or not local)"
    text = status_file.read_text().strip()
    return f"the real node did not start: {text.removeprefix('unavailable: ')}"


def real_node_or_skip(core_v1: client.CoreV1Api, status_file: Path = NODE_STATUS_FILE) -> str:
    """The Ready real node's name; without one the test skips with the reason, or fails in CI.

    (``hack/node-up.sh`` itself fails where the machine could run a node and it did not start, so a skip is
    left only for a machine that cannot run one, or a run with ``ASSAY_REAL_NODE=off``.)
    """
    node = ready_real_node(core_v1)
    if node is None:
        missing(why_no_real_node(status_file))
    return node


def ready_real_node(core_v1: client.CoreV1Api) -> str | None:
    """The name of a Ready real (non-KWOK) node of the local pool, if there is one."""
    for node in core_v1.list_node(label_selector="=".join(POOL_LABEL)).items:
        annotations = node.metadata.annotations or {}
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        if ready and "kwok.x-k8s.io/node" not in annotations:
            return str(node.metadata.name)
    return None
