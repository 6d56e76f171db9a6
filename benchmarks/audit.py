"""API requests per client, verb and resource, from the apiserver's audit log (pure functions).

Every client of the benchmark cluster uses the same admin credentials, so clients are told apart by their
User-Agent. Anything that is not the benchmark driver or a control-plane component is the controller under
test (the JobSet manager in A1, Assay's operator in A2).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
CONTROLLER = "controller"  # the controller under test
# User-Agent prefixes of the clients that are not the controller under test.
_KNOWN_CLIENTS = (
    ("assay-bench/", "bench"),
    ("kube-controller-manager/", "controller-manager"),
    ("kube-scheduler/", "scheduler"),
    ("kube-apiserver/", "apiserver"),
    ("kwok", "kwok"),  # kwok-controller/, kwokctl/
    ("kubectl", "kubectl"),  # kubectl/, kubectl-dispatcher/
)


def client_of(user_agent: str) -> str:
    for prefix, name in _KNOWN_CLIENTS:
        if user_agent.startswith(prefix):
            return name
    return CONTROLLER


def _resource(event: dict[str, Any]) -> str:
    ref = event.get("objectRef")
    if not ref:
        return str(event.get("requestURI", "?")).split("?")[0]  # /readyz, /api, ...
    name = str(ref.get("resource", "?"))
    if ref.get("apiGroup"):
        name = f"{name}.{ref['apiGroup']}"
    if ref.get("subresource"):
        name = f"{name}/{ref['subresource']}"
    return name


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def count_requests(
    lines: Iterable[str], start: float, end: float
) -> tuple[Counter[tuple[str, str, str]], set[str]]:
    """(client, verb, resource) -> requests received in [start, end], and the controller's User-Agents.

    One count per request: its ResponseComplete record, or ResponseStarted for watches (a watch completes only
    when it ends, often after the window).
    """
    counts: Counter[tuple[str, str, str]] = Counter()
    controller_agents: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        verb = event.get("verb", "?")
        stage = event.get("stage")
        if (verb == "watch") != (stage == "ResponseStarted") or stage not in (
            "ResponseStarted",
            "ResponseComplete",
        ):
            continue
        received = _timestamp(event["requestReceivedTimestamp"])
        if not start <= received <= end:
            continue
        agent = str(event.get("userAgent", ""))
        client = client_of(agent)
        if client == CONTROLLER:
            controller_agents.add(agent.split(" ")[0])
        counts[(client, verb, _resource(event))] += 1
    return counts, controller_agents


def per_evaluation(counts: Counter[tuple[str, str, str]], evaluations: int) -> dict[str, Any]:
    """Requests per evaluation: by client, the controller's by verb and resource, and writes."""
    by_client: Counter[str] = Counter()
    writes_by_client: Counter[str] = Counter()
    controller: Counter[str] = Counter()
    for (client, verb, resource), n in counts.items():
        by_client[client] += n
        if verb in WRITE_VERBS:
            writes_by_client[client] += n
        if client == CONTROLLER:
            controller[f"{verb} {resource}"] += n
    n = max(evaluations, 1)
    return {
        "total_per_eval": round(sum(by_client.values()) / n, 2),
        "by_client_per_eval": {c: round(v / n, 2) for c, v in sorted(by_client.items())},
        "writes_by_client_per_eval": {c: round(v / n, 2) for c, v in sorted(writes_by_client.items())},
        "controller_by_verb_resource_per_eval": {
            k: round(v / n, 3) for k, v in sorted(controller.items(), key=lambda kv: -kv[1])
        },
        "raw": [
            {"client": c, "verb": v, "resource": r, "count": k} for (c, v, r), k in sorted(counts.items())
        ],
    }


def events_lost(apiserver_metrics: str) -> float:
    """Audit events the apiserver could not write (its buffer overflowed): request counts are then low."""
    lost = 0.0
    for family in text_string_to_metric_families(apiserver_metrics):
        if family.name == "apiserver_audit_error":
            lost += sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    return lost
