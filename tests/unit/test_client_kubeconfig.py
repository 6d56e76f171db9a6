"""assay.kubeconfig: the connection a kubeconfig gives, and what it leaves to the kubernetes client."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from assay.kubeconfig import ConfigError, Unsupported, config_path, connection_of, load


def kubeconfig(cluster: dict[str, Any], user: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    return {
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": context}, {"name": "other", "context": {"cluster": "c"}}],
        "current-context": "ctx",
    }


def test_token_and_certificate_authority_file_relative_to_the_kubeconfig(tmp_path: Path):
    (tmp_path / "ca.crt").write_text("CA PEM")
    config = kubeconfig(
        {"server": "https://api:6443/", "certificate-authority": "ca.crt"}, {"token": "abc"}, "team-a"
    )
    connection = connection_of(config, None, base=tmp_path)
    assert connection.server == "https://api:6443"
    assert connection.ca_pem == "CA PEM"
    assert connection.verify
    assert connection.headers == {"Authorization": "Bearer abc"}
    assert connection.namespace == "team-a"


def test_client_certificate_data_and_an_insecure_cluster(tmp_path: Path):
    def data(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    config = kubeconfig(
        {"server": "https://api", "insecure-skip-tls-verify": True},
        {"client-certificate-data": data("CERT"), "client-key-data": data("KEY")},
    )
    connection = connection_of(config, None, base=tmp_path)
    assert (connection.client_cert_pem, connection.client_key_pem) == ("CERT", "KEY")
    assert not connection.verify
    assert connection.headers == {}


def test_token_file_and_basic_auth(tmp_path: Path):
    (tmp_path / "token").write_text("from-file\n")
    assert connection_of(
        kubeconfig({"server": "https://a"}, {"tokenFile": "token"}), None, base=tmp_path
    ).headers == {"Authorization": "Bearer from-file"}
    basic = connection_of(
        kubeconfig({"server": "https://a"}, {"username": "u", "password": "p"}), None, base=tmp_path
    )
    assert basic.headers == {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}


def test_a_context_without_a_user_sends_no_credentials(tmp_path: Path):
    connection = connection_of(kubeconfig({"server": "http://a"}, {"token": "t"}), "other", base=tmp_path)
    assert connection.headers == {}


@pytest.mark.parametrize(
    ("cluster", "user", "named"),
    [
        ({"server": "https://a"}, {"exec": {"command": "aws"}}, "exec"),
        ({"server": "https://a"}, {"auth-provider": {"name": "oidc"}}, "auth-provider"),
        ({"server": "https://a", "proxy-url": "http://p"}, {}, "cluster.proxy-url"),
        ({"server": "https://a", "tls-server-name": "x"}, {}, "cluster.tls-server-name"),
    ],
)
def test_what_only_the_kubernetes_client_supports_is_unsupported(cluster, user, named, tmp_path: Path):
    with pytest.raises(Unsupported, match=named):
        connection_of(kubeconfig(cluster, user), None, base=tmp_path)


def test_several_kubeconfig_files_are_unsupported(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", "/a:/b")
    with pytest.raises(Unsupported, match="several"):
        config_path(None)
    monkeypatch.setenv("KUBECONFIG", "/only")
    assert config_path(None) == Path("/only")


def test_an_unknown_context_or_missing_server_is_a_config_error(tmp_path: Path):
    config = kubeconfig({"server": "https://a"}, {})
    with pytest.raises(ConfigError, match="context 'nope' not found"):
        connection_of(config, "nope", base=tmp_path)
    with pytest.raises(ConfigError, match="has no server"):
        connection_of(kubeconfig({}, {}), None, base=tmp_path)
    with pytest.raises(ConfigError, match="no current-context"):
        connection_of({**config, "current-context": ""}, None, base=tmp_path)


def test_a_proxy_from_the_environment_is_left_to_the_kubernetes_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "config"
    path.write_text(json.dumps(kubeconfig({"server": "https://api:6443"}, {"token": "t"})))
    assert load(path).server == "https://api:6443"
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")  # another scheme's proxy: not this server's
    assert load(path).server == "https://api:6443"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    with pytest.raises(Unsupported, match="proxy"):
        load(path)
