"""Reading a ``pvc://`` output: a short-lived reader pod that mounts the claim read-only and streams it.

The claim is only reachable from inside the cluster, so ``Client.results`` starts a pod in the evaluation's
namespace, as the user (it needs only what the user may do: create and delete pods, read their logs). The pod
prints the report, the shard names and then the shard lines to its log, which the client reads and stops
reading as soon as its page is full. It meets the ``restricted`` Pod Security Standard, mounts no service
account token, is owned by the Evaluation (deleting the Evaluation deletes it), ends by itself after
:data:`READER_DEADLINE_SECONDS`, and is deleted as soon as the page is read, also on Ctrl-C.

It carries no ``assay.dev/evaluation`` label: the operator watches pods with that label as task pods.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from assay.api import API_VERSION, EVALUATION_KIND, Evaluation
from assay.render.names import label_value

READER_CONTAINER = "reader"
READER_MOUNT = "/assay/output"
READER_DEADLINE_SECONDS = 300
LABEL_RESULTS_OF = "assay.dev/results-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
READER_MANAGER = "assay-results-reader"
DEFAULT_READER_IMAGE = "assay-runtime:latest"  # the operator's default runtime image

# Runs in the runtime image (it has Python: it runs the runner). Line 1: report.json as one line; line 2: the
# names in predictions/ as a JSON list; then every line of the layout the report names, in shard order.
READER_SCRIPT = """\
import json, os, sys
root = sys.argv[1]
with open(os.path.join(root, "report.json"), "rb") as f:
    report = json.load(f)
print(json.dumps(report, separators=(",", ":")))
folder = os.path.join(root, "predictions")
names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
print(json.dumps(names))
count = report.get("predictionShards")
wanted = "-of-%05d.jsonl" % count if isinstance(count, int) else ".jsonl"
sys.stdout.flush()
for name in names:
    if name.startswith("shard-") and name.endswith(wanted):
        with open(os.path.join(folder, name), "rb") as f:
            for line in f:
                sys.stdout.buffer.write(line)
sys.stdout.flush()
"""


def reader_pod_name(evaluation: str, suffix: str | None = None) -> str:
    """``<evaluation>-results-<random>``, cut to a valid pod name: one pod per read, never reused."""
    tail = f"-results-{suffix or secrets.token_hex(3)}"
    return f"{evaluation[: 63 - len(tail)].rstrip('-.')}{tail}"


def reader_pod(
    evaluation: Evaluation,
    claim: str,
    path: str,
    *,
    image: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, Any]] = (),
    suffix: str | None = None,
) -> dict[str, Any]:
    """The reader pod for ``pvc://<claim>/<path>`` of ``evaluation`` (a pure render: no I/O)."""
    runtime = evaluation.spec.runtime
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": READER_DEADLINE_SECONDS,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": READER_CONTAINER,
                "image": image or (runtime.image if runtime and runtime.image else DEFAULT_READER_IMAGE),
                "command": ["python", "-c", READER_SCRIPT, f"{READER_MOUNT}/{path.strip('/')}"],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True,
                },
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "volumeMounts": [{"name": "output", "mountPath": READER_MOUNT, "readOnly": True}],
            }
        ],
        "volumes": [{"name": "output", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
    }
    # The claim may be reachable only from the pool's nodes (a hostPath volume, a zonal disk).
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": reader_pod_name(evaluation.name, suffix),
            "namespace": evaluation.namespace,
            "labels": {LABEL_RESULTS_OF: label_value(evaluation.name), LABEL_MANAGED_BY: READER_MANAGER},
            # Not the controller, and blocking nothing: owning it needs no right on the Evaluation.
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": EVALUATION_KIND,
                    "name": evaluation.name,
                    "uid": evaluation.metadata.uid or "",
                }
            ],
        },
        "spec": spec,
    }


def split_stream(lines: Generator[bytes]) -> tuple[dict[str, Any], list[str], Generator[bytes]]:
    """The reader's log: the report, the shard names, and the prediction lines still to be read."""
    try:
        report = json.loads(next(lines))
        names = json.loads(next(lines))
    except (StopIteration, ValueError) as exc:
        raise ValueError(f"the results reader printed no report: {exc}") from exc
    if not isinstance(report, dict) or not isinstance(names, list):
        raise ValueError("the results reader printed something else than a report and shard names")
    return report, [str(n) for n in names], lines


# --- running it ---------------------------------------------------------------------------------------

# Waiting reasons after which the pod will not start by itself: fail at once with the kubelet's message.
STUCK_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"}
START_TIMEOUT_SECONDS = 120


def byte_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Chunks of a stream as lines (each with its newline; the last one may lack it)."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *complete, rest = rest.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if rest:
        yield rest


def why_not_started(pod: Mapping[str, Any]) -> str | None:
    """The reason a pending reader pod will not run, or None while it may still start."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return f"{waiting['reason']}: {waiting.get('message', '')}".strip()
    return None


def pending_reason(pod: Mapping[str, Any]) -> str:
    """What the scheduler said about a pod that is still pending (e.g. no node can mount the claim)."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"{condition.get('reason')}: {condition.get('message')}"
    return "it did not start"
