"""Driving pods on KWOK fake nodes: wait for them, then make them end as a test says.

A pod scheduled onto a fake node goes Running and stays Running until annotated (``hack/kwok/stages/``):

* ``kwok.assay.dev/outcome``: ``succeed`` or ``fail``;
* ``kwok.assay.dev/exit-code``: every container's exit code (default 0 on succeed, 1 on fail);
* ``kwok.assay.dev/message``: the termination message, at ``containerStatuses[].state.terminated.message``;
* ``kwok.assay.dev/reason``: the terminated reason (default ``Completed`` / ``Error``; e.g. ``OOMKilled``).
* ``kwok.assay.dev/message-on-stop``: when the pod is deleted, it exits 0 with this termination message (as a
  debug run's runner does on SIGTERM after its handler finished) instead of 143 with none.

The annotations may also be set at creation: the pod then ends as soon as it runs. A pod labelled
``kwok.assay.dev/auto-complete: "true"`` succeeds by itself after ``kwok.assay.dev/auto-complete-after``
(a Go duration, default 1s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubernetes import client

from support.wait import wait_until

OUTCOME_ANNOTATION = "kwok.assay.dev/outcome"
EXIT_CODE_ANNOTATION = "kwok.assay.dev/exit-code"
MESSAGE_ANNOTATION = "kwok.assay.dev/message"
REASON_ANNOTATION = "kwok.assay.dev/reason"
MESSAGE_ON_STOP_ANNOTATION = "kwok.assay.dev/message-on-stop"
AUTO_COMPLETE_LABEL = "kwok.assay.dev/auto-complete"
AUTO_COMPLETE_AFTER_ANNOTATION = "kwok.assay.dev/auto-complete-after"
# Marks the nodes kwok manages (and only those).
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"

DEFAULT_TIMEOUT_S = 60.0


def outcome_annotations(
    outcome: str, *, exit_code: int | None = None, message: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """The annotations that make a fake pod end with ``outcome`` (``succeed`` or ``fail``)."""
    if outcome not in ("succeed", "fail"):
        raise ValueError(f"outcome must be 'succeed' or 'fail', not {outcome!r}")
    annotations = {OUTCOME_ANNOTATION: outcome}
    if exit_code is not None:
        annotations[EXIT_CODE_ANNOTATION] = str(int(exit_code))
    if message is not None:
        annotations[MESSAGE_ANNOTATION] = message
    if reason is not None:
        annotations[REASON_ANNOTATION] = reason
    return annotations


def terminated_state(
    pod: client.V1Pod, container: str | None = None
) -> client.V1ContainerStateTerminated | None:
    """The terminated state of ``container`` (default: the first container), or None while it has none."""
    for status in pod.status.container_statuses or []:
        if container is None or status.name == container:
            return status.state.terminated if status.state else None
    return None


def scheduling_message(pod: client.V1Pod) -> str | None:
    """The scheduler's reason a pod is not placed (e.g. ``0/8 nodes are available: ...``), or None."""
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"{condition.reason}: {condition.message}"
    return None


def _describe(pods: Iterable[client.V1Pod]) -> str:
    return (
        ", ".join(f"{p.metadata.name}={p.status.phase}@{p.spec.node_name or '-'}" for p in pods) or "no pods"
    )


@dataclass(frozen=True)
class FakePods:
    """Waits for pods and drives them on KWOK nodes. Every method takes the namespace explicitly."""

    core: client.CoreV1Api

    def list(self, namespace: str, selector: str = "") -> list[client.V1Pod]:
        return list(self.core.list_namespaced_pod(namespace, label_selector=selector).items)

    def get(self, namespace: str, name: str) -> client.V1Pod:
        return self.core.read_namespaced_pod(name, namespace)

    def wait_for(
        self,
        namespace: str,
        selector: str = "",
        *,
        count: int = 1,
        phases: Iterable[str] = ("Running",),
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> list[client.V1Pod]:
        """Wait until at least ``count`` pods matching ``selector`` are in one of ``phases``; return those."""
        wanted = set(phases)

        def matching() -> list[client.V1Pod]:
            pods = [p for p in self.list(namespace, selector) if p.status.phase in wanted]
            return pods if len(pods) >= count else []

        return wait_until(
            matching,
            timeout=timeout,
            what=f"{count} pod(s) {selector or '(any)'} in {namespace} to be {'/'.join(sorted(wanted))}",
            last_seen=lambda: _describe(self.list(namespace, selector)),
        )

    def wait_running(
        self, namespace: str, selector: str = "", *, count: int = 1, timeout: float = DEFAULT_TIMEOUT_S
    ) -> list[client.V1Pod]:
        """Wait until ``count`` pods matching ``selector`` are Running (scheduled and started by kwok)."""
        return self.wait_for(namespace, selector, count=count, phases=("Running",), timeout=timeout)

    def wait_phase(
        self, namespace: str, name: str, phases: Iterable[str], *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> client.V1Pod:
        """Wait until pod ``name`` is in one of ``phases``; return it."""
        wanted = set(phases)

        def reached() -> client.V1Pod | None:
            pod = self.get(namespace, name)
            return pod if pod.status.phase in wanted else None

        return wait_until(
            reached,
            timeout=timeout,
            what=f"pod {namespace}/{name} to be {'/'.join(sorted(wanted))}",
            last_seen=lambda: _describe([self.get(namespace, name)]),
        )

    def wait_unschedulable(self, namespace: str, name: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> str:
        """Wait until the scheduler has given up placing pod ``name``; return its reason and message."""
        return wait_until(
            lambda: scheduling_message(self.get(namespace, name)),
            timeout=timeout,
            what=f"pod {namespace}/{name} to be marked unschedulable",
            last_seen=lambda: self.get(namespace, name).status,
        )

    def finish(
        self,
        namespace: str,
        name: str,
        outcome: str,
        *,
        exit_code: int | None = None,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Annotate pod ``name`` so kwok ends it with ``outcome``; returns at once (see ``wait_phase``)."""
        annotations = outcome_annotations(outcome, exit_code=exit_code, message=message, reason=reason)
        self.core.patch_namespaced_pod(name, namespace, {"metadata": {"annotations": annotations}})

    def succeed(self, namespace: str, name: str, *, exit_code: int = 0, message: str | None = None) -> None:
        self.finish(namespace, name, "succeed", exit_code=exit_code, message=message)

    def fail(
        self,
        namespace: str,
        name: str,
        *,
        exit_code: int = 1,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.finish(namespace, name, "fail", exit_code=exit_code, message=message, reason=reason)

    def report_on_stop(self, namespace: str, name: str, message: str) -> None:
        """Make pod ``name`` exit 0 with ``message`` when it is deleted; it runs on until then."""
        annotations = {MESSAGE_ON_STOP_ANNOTATION: message}
        self.core.patch_namespaced_pod(name, namespace, {"metadata": {"annotations": annotations}})

    def finish_all(
        self,
        namespace: str,
        selector: str,
        outcome: str,
        *,
        count: int = 1,
        exit_code: int | None = None,
        message: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> list[client.V1Pod]:
        """Wait for ``count`` Running pods matching ``selector``, end each with ``outcome``; return them."""
        pods = self.wait_running(namespace, selector, count=count, timeout=timeout)
        for pod in pods:
            self.finish(namespace, pod.metadata.name, outcome, exit_code=exit_code, message=message)
        return pods


def fake_node_names(core: client.CoreV1Api) -> list[str]:
    """Names of the nodes kwok manages (annotated ``kwok.x-k8s.io/node: fake``)."""
    nodes = core.list_node().items
    return sorted(
        n.metadata.name for n in nodes if _annotations(n.metadata).get(FAKE_NODE_ANNOTATION) == "fake"
    )


def _annotations(metadata: client.V1ObjectMeta) -> Mapping[str, str]:
    return metadata.annotations or {}
