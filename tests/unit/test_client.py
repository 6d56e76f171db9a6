"""assay.client without a cluster: error translation, manifests, ordering, configuration, and what happens
when the API server is not there (a real connection to a closed port, not a mock)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from cli_samples import evaluation
from kubernetes.client.exceptions import ApiException

import assay
from assay.client import (
    AlreadyExists,
    Client,
    ClusterUnreachable,
    Forbidden,
    Invalid,
    NotFound,
    load_manifests,
    sort_newest_first,
    translate_api_error,
)


def api_error(status: int, body: object, reason: str = "") -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = body if isinstance(body, str) else json.dumps(body)
    return error


def test_client_is_exported_lazily_from_the_package():
    assert assay.Client is Client
    with pytest.raises(AttributeError):
        _ = assay.NoSuchThing  # type: ignore[attr-defined]


def test_404_of_a_named_object_says_which_one_is_missing():
    error = translate_api_error(
        api_error(
            404, {"kind": "Status", "reason": "NotFound", "details": {"name": "x", "kind": "evaluations"}}
        ),
        "evaluation 'x' in namespace 'team-a'",
    )
    assert isinstance(error, NotFound)
    assert str(error) == "evaluation 'x' in namespace 'team-a' not found"


def test_404_without_a_status_means_the_crds_are_missing():
    error = translate_api_error(api_error(404, "404 page not found\n"), "evaluations in namespace 'a'")
    assert isinstance(error, NotFound)
    assert "does not serve assay.dev/v1alpha1: install Assay first" in str(error)


def test_403_keeps_the_servers_explanation_and_says_what_to_do():
    message = 'evaluations.assay.dev is forbidden: User "bob" cannot list resource "evaluations"'
    error = translate_api_error(api_error(403, {"kind": "Status", "message": message}), "evaluations")
    assert isinstance(error, Forbidden)
    assert str(error).startswith(message)
    assert "RBAC" in str(error)
    assert "\n" not in str(error)


def test_401_409_422_map_to_their_errors():
    assert isinstance(translate_api_error(api_error(401, "Unauthorized"), "x"), Forbidden)
    assert isinstance(translate_api_error(api_error(409, {"message": "exists"}), "x"), AlreadyExists)
    invalid = translate_api_error(api_error(422, {"message": "spec.tasks: must be >= 1"}), "x")
    assert isinstance(invalid, Invalid)
    assert str(invalid) == "spec.tasks: must be >= 1"


def test_error_exit_codes_are_distinct_and_not_clicks_usage_code():
    codes = [e.exit_code for e in (NotFound, Forbidden, ClusterUnreachable, Invalid, AlreadyExists)]
    assert len(set(codes)) == len(codes)
    assert 2 not in codes and 0 not in codes


def test_load_manifests_reads_every_document_and_unpacks_lists(tmp_path: Path):
    path = tmp_path / "evals.yaml"
    path.write_text(
        "kind: Evaluation\nmetadata: {name: a}\n---\n---\n"
        "kind: List\nitems:\n"
        "- {kind: Evaluation, metadata: {name: b}}\n- {kind: Evaluation, metadata: {name: c}}\n"
    )
    assert [m["metadata"]["name"] for m in load_manifests(path)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "holds no objects"), ("a: [1, 2\n", "is not valid YAML"), ("- 1\n- 2\n", "expected a mapping")],
)
def test_load_manifests_reports_bad_files_in_one_line(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(Invalid, match=message) as caught:
        load_manifests(path)
    assert "\n" not in str(caught.value)


def test_load_manifests_of_a_missing_file(tmp_path: Path):
    with pytest.raises(Invalid, match=r"cannot read .*missing\.yaml: No such file"):
        load_manifests(tmp_path / "missing.yaml")


def test_newest_first_then_by_name():
    older = evaluation("older", created="2026-11-26T09:00:00Z")
    newer = evaluation("newer", created="2026-11-26T10:00:00Z")
    twin = evaluation("twin", created="2026-11-26T10:00:00Z")
    assert [e.name for e in sort_newest_first([older, newer, twin])] == ["twin", "newer", "older"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(path: Path, server: str, namespace: str | None = "team-a") -> Path:
    context: dict[str, str] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "one", "context": context},
                    {"name": "two", "context": {**context, "namespace": "b"}},
                ],
                "current-context": "one",
            }
        )
    )
    return path


def test_namespace_comes_from_the_context_unless_given(tmp_path: Path):
    config = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:1")
    assert Client(config).namespace == "team-a"
    assert Client(config, context="two").namespace == "b"
    assert Client(config, namespace="mine").namespace == "mine"
    assert Client(write_kubeconfig(tmp_path / "plain", "http://127.0.0.1:1", None)).namespace == "default"


def test_an_unknown_context_is_a_clear_error(tmp_path: Path):
    config = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:1")
    with pytest.raises(ClusterUnreachable, match=r"cannot load the cluster configuration.*nope"):
        Client(config, context="nope")


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ClusterUnreachable, match="does not exist"):
        Client(tmp_path / "missing")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "also-missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClusterUnreachable, match=r"no kubeconfig found \(\$KUBECONFIG=.*also-missing"):
        Client()


def test_a_server_that_does_not_answer_fails_fast_with_one_line(tmp_path: Path):
    config = write_kubeconfig(tmp_path / "config", f"http://127.0.0.1:{_free_port()}")
    client = Client(config)
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as caught:
        client.list()
    assert time.monotonic() - started < 10
    assert str(caught.value).startswith("cannot reach the Kubernetes API at http://127.0.0.1:")
    assert "\n" not in str(caught.value)


def test_impersonating_groups_without_a_user_is_refused(tmp_path: Path):
    config = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:1")
    with pytest.raises(Invalid, match=r"^--as-group a, b needs --as: impersonate a user to give groups$"):
        Client(config, impersonate_groups=["a", "b"])
