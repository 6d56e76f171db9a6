"""``--webhook local``'s ValidatingWebhookConfiguration: the handlers' paths, failing closed, scoped."""

from __future__ import annotations

import base64

from test_manifests import find

from assay.controller.admission.server import local_configuration_name, local_webhook_configuration
from assay.controller.admission.webhooks import SET_WEBHOOK_ID, WEBHOOK_ID, WEBHOOK_MATCH_CONDITIONS

URL = "https://localhost:40443"


def test_each_webhook_calls_the_path_kopf_serves_its_handler_at() -> None:
    body = local_webhook_configuration("c", url=URL, ca_pem=b"PEM", namespaces=["team-a"])
    evaluations, sets = body["webhooks"]
    assert evaluations["clientConfig"]["url"] == f"{URL}/{WEBHOOK_ID}"
    assert sets["clientConfig"]["url"] == f"{URL}/{SET_WEBHOOK_ID}"
    assert {w["clientConfig"]["caBundle"] for w in body["webhooks"]} == {base64.b64encode(b"PEM").decode()}


def test_it_fails_closed_and_asks_what_the_installed_configuration_asks() -> None:
    """Same rules, policies and conditions as manifests/base/webhook.yaml (only how it is reached differs)."""
    local = local_webhook_configuration("c", url=URL, ca_pem=b"PEM", namespaces=[])
    installed = find("ValidatingWebhookConfiguration", "assay-validating-webhook")
    for mine, theirs in zip(local["webhooks"], installed["webhooks"], strict=True):
        for key in ("rules", "failurePolicy", "matchPolicy", "sideEffects", "admissionReviewVersions"):
            assert mine[key] == theirs[key], key
        assert mine.get("matchConditions") == theirs.get("matchConditions")
    assert local["webhooks"][0]["matchConditions"] == WEBHOOK_MATCH_CONDITIONS
    assert all("namespaceSelector" not in w for w in local["webhooks"]), "no namespaces given: all of them"


def test_it_sends_only_the_watched_namespaces() -> None:
    body = local_webhook_configuration("c", url=URL, ca_pem=b"PEM", namespaces=["b", "a"])
    for webhook in body["webhooks"]:
        (expression,) = webhook["namespaceSelector"]["matchExpressions"]
        assert expression == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}


def test_operators_of_different_namespaces_keep_configurations_apart() -> None:
    assert local_configuration_name(["a", "b"]) == local_configuration_name(["b", "a"])
    assert local_configuration_name(["a"]) != local_configuration_name(["b"])
