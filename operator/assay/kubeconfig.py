"""The connection a kubeconfig describes, read without the kubernetes client (it costs 0.3 s to import).

Supports what kubectl writes for most clusters: one kubeconfig file, a context (given or current), the
cluster's ``server``, ``certificate-authority[-data]`` and ``insecure-skip-tls-verify``, and a user with a
``token``, ``tokenFile``, ``username``/``password`` or ``client-certificate[-data]``/``client-key[-data]``.
Anything else (``exec`` and ``auth-provider`` plugins, ``proxy-url``, ``tls-server-name``, impersonation in
the kubeconfig, several files merged from ``$KUBECONFIG``, a proxy from the environment such as
``HTTPS_PROXY``) is :class:`Unsupported`: the SDK then uses the kubernetes client, which knows them all.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_KUBECONFIG = Path("~/.kube/config")

_CLUSTER_KEYS = frozenset(
    {
        "server",
        "certificate-authority",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "extensions",
    }
)
_USER_KEYS = frozenset(
    {
        "token",
        "tokenFile",
        "username",
        "password",
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "extensions",
    }
)


_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


class ConfigError(Exception):
    """The kubeconfig is unreadable or does not describe a cluster (a message a person can act on)."""


class Unsupported(Exception):
    """The kubeconfig uses something only the kubernetes client's loader supports; the message says what."""


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where the API server is and how to authenticate: PEM texts, not file names."""

    server: str
    namespace: str | None = None
    ca_pem: str | None = None
    verify: bool = True
    client_cert_pem: str | None = None
    client_key_pem: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


def config_path(kubeconfig: str | os.PathLike[str] | None) -> Path:
    """The one kubeconfig file kubectl would read; :class:`Unsupported` for a ``$KUBECONFIG`` of several."""
    if kubeconfig is not None:
        return Path(kubeconfig).expanduser()
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if len(paths) > 1:
        raise Unsupported("$KUBECONFIG names several files (merged)")
    return Path(paths[0] if paths else DEFAULT_KUBECONFIG).expanduser()


def load(kubeconfig: str | os.PathLike[str] | None, context: str | None = None) -> Connection:
    """The connection of ``context`` (default: the current context) in the kubeconfig kubectl would read."""
    path = config_path(kubeconfig)
    try:
        config = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path} is not a kubeconfig (no mapping)")
    connection = connection_of(config, context, base=path.parent)
    if environment_proxy(connection.server):
        raise Unsupported("the environment sets a proxy for the API server's URL")
    return connection


def environment_proxy(server: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``ALL_PROXY``...) names for ``server``'s scheme, as the
    kubernetes client picks it (it also applies ``NO_PROXY``; a server it exempts still takes its path)."""
    if not any(name.lower() in _PROXY_VARIABLES and value for name, value in os.environ.items()):
        return None  # urllib.request is a slow import; most machines set no proxy
    from urllib.request import getproxies

    proxies = getproxies()
    return proxies.get(server.partition(":")[0]) or proxies.get("all")


def _named(config: Mapping[str, Any], kind: str, name: str) -> dict[str, Any]:
    for entry in config.get(kind) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            found = entry.get(kind[:-1])
            return found if isinstance(found, dict) else {}
    raise ConfigError(f"{kind[:-1]} {name!r} not found in the kubeconfig")


def _pem(entry: Mapping[str, Any], key: str, base: Path) -> str | None:
    """The PEM text of ``key-data`` (base64) or of the file ``key`` names (relative to the kubeconfig)."""
    data = entry.get(f"{key}-data")
    if data:
        return base64.b64decode(data).decode()
    file = entry.get(key)
    if not file:
        return None
    try:
        return (base / Path(file).expanduser()).read_text()
    except OSError as error:
        raise ConfigError(f"cannot read {key} {file}: {error.strerror or error}") from error


def connection_of(config: Mapping[str, Any], context: str | None, *, base: Path) -> Connection:
    """The connection a parsed kubeconfig gives ``context``; relative file names are taken from ``base``."""
    name = context or config.get("current-context")
    if not name:
        raise ConfigError("the kubeconfig has no current-context: pass --context")
    chosen = _named(config, "contexts", name)
    cluster = _named(config, "clusters", str(chosen.get("cluster")))
    user = _named(config, "users", str(chosen.get("user"))) if chosen.get("user") else {}
    unsupported = sorted(
        {f"cluster.{k}" for k in cluster.keys() - _CLUSTER_KEYS} | (user.keys() - _USER_KEYS)
    )
    if unsupported:
        raise Unsupported(f"the kubeconfig uses {', '.join(unsupported)}")
    if not cluster.get("server"):
        raise ConfigError(f"context {name!r}: its cluster has no server")
    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            token = (base / Path(user["tokenFile"]).expanduser()).read_text().strip()
        except OSError as error:
            raise ConfigError(f"cannot read tokenFile {user['tokenFile']}: {error}") from error
    if token and user.get("username"):
        raise Unsupported("the kubeconfig user has both a token and a username")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("username"):
        basic = base64.b64encode(f"{user['username']}:{user.get('password', '')}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    namespace = chosen.get("namespace")
    return Connection(
        server=str(cluster["server"]).rstrip("/"),
        namespace=str(namespace) if namespace else None,
        ca_pem=_pem(cluster, "certificate-authority", base),
        verify=not cluster.get("insecure-skip-tls-verify", False),
        client_cert_pem=_pem(user, "client-certificate", base),
        client_key_pem=_pem(user, "client-key", base),
        headers=headers,
    )
