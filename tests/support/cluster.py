"""Which cluster the tests use, decided here and only here, and starting/stopping the local one.

Order of preference:

1. ``ASSAY_KUBECONFIG``: any cluster you point at (kind, a cloud cluster, the chaos cluster); it must answer,
   and the session never starts or stops it;
2. otherwise the local cluster (``.cluster/kubeconfig``): ``hack/kwok-cluster.sh up`` runs either way, so a
   cluster already up (``make cluster-up``) gets this checkout's kwok stages and runner image and is left
   running, and one it started is stopped by :meth:`LocalCluster.stop`.

tests/conftest.py decides once per session, before the first test (outside any test's timeout, with the
script's output on the terminal), when a test marked ``cluster`` was selected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = REPO_ROOT / ".cluster" / "kubeconfig"
LOCAL_KUBECTL = REPO_ROOT / ".cluster" / "bin" / "kubectl"
KUBECONFIG_ENV = "ASSAY_KUBECONFIG"
CLUSTER_SCRIPT = REPO_ROOT / "hack" / "kwok-cluster.sh"


class ClusterUnavailableError(RuntimeError):
    """No cluster to test against; the message says how to get one."""


def kubeconfig_answers(path: Path, timeout: float = 5.0) -> bool:
    """Whether the apiserver named by the kubeconfig at ``path`` answers a version request."""
    if not path.is_file():
        return False
    try:
        api = config.new_client_from_config(config_file=str(path))
    except (ConfigException, OSError, ValueError):
        return False
    try:
        client.VersionApi(api).get_code(_request_timeout=timeout)
        return True
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError):
        return False
    finally:
        api.close()


def kubectl_binary() -> str:
    """The kubectl the local cluster linked (same version as the apiserver), else one on PATH."""
    if LOCAL_KUBECTL.exists():
        return str(LOCAL_KUBECTL)
    found = shutil.which("kubectl")
    if found is None:
        raise ClusterUnavailableError(
            "no kubectl: run `make cluster-up` (links .cluster/bin/kubectl) or install one"
        )
    return found


def _cluster_script(action: str) -> None:
    """``hack/kwok-cluster.sh ACTION`` on the test cluster; its output goes where the session's goes."""
    returncode = subprocess.run([str(CLUSTER_SCRIPT), action], cwd=REPO_ROOT, check=False).returncode
    if returncode != 0:
        raise ClusterUnavailableError(
            f"hack/kwok-cluster.sh {action} failed with exit code {returncode} (its output is above)"
        )


@dataclass(frozen=True)
class LocalCluster:
    """The cluster a test session runs against."""

    kubeconfig: Path
    # True when this session started the local cluster and so must stop it.
    started_here: bool

    @classmethod
    def find_or_start(cls) -> LocalCluster:
        given = os.environ.get(KUBECONFIG_ENV)
        if given:
            path = Path(given).expanduser()
            if not kubeconfig_answers(path):
                raise ClusterUnavailableError(
                    f"{KUBECONFIG_ENV}={given}: no apiserver answers there; fix the path or the cluster, "
                    f"or unset {KUBECONFIG_ENV} to use the local cluster"
                )
            return cls(kubeconfig=path, started_here=False)
        was_up = kubeconfig_answers(LOCAL_KUBECONFIG)
        _cluster_script("up")
        if not kubeconfig_answers(LOCAL_KUBECONFIG, timeout=15.0):
            raise ClusterUnavailableError(
                f"hack/kwok-cluster.sh up ran but {LOCAL_KUBECONFIG} does not answer"
            )
        return cls(kubeconfig=LOCAL_KUBECONFIG, started_here=not was_up)

    def stop(self) -> None:
        """Stop the local cluster if this session started it; a cluster found running is left running."""
        if self.started_here:
            _cluster_script("down")


_SESSION_CLUSTER = pytest.StashKey[LocalCluster]()


def session_cluster(config: pytest.Config) -> LocalCluster:
    """The session's cluster: decided (and the local one started) on the first call, the same one after."""
    if _SESSION_CLUSTER not in config.stash:
        config.stash[_SESSION_CLUSTER] = LocalCluster.find_or_start()
    return config.stash[_SESSION_CLUSTER]


def stop_session_cluster(config: pytest.Config) -> None:
    """Stop the local cluster if this session started it (nothing if no test needed a cluster)."""
    cluster = config.stash.get(_SESSION_CLUSTER, None)
    if cluster is not None:
        cluster.stop()
