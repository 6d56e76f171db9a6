"""Which cluster the integration tests use, and starting/stopping the local one.

Order of preference:

1. ``ASSAY_KUBECONFIG``: any cluster you point at (kind, a cloud cluster); it must answer, and the suite never
   starts or stops it;
2. ``.cluster/kubeconfig``: the local cluster already up (``make cluster-up``); reused and left running;
3. otherwise ``hack/kwok-cluster.sh up`` starts the local cluster, and :meth:`LocalCluster.stop` stops it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = REPO_ROOT / ".cluster" / "kubeconfig"
LOCAL_KUBECTL = REPO_ROOT / ".cluster" / "bin" / "kubectl"
KUBECONFIG_ENV = "ASSAY_KUBECONFIG"
# Starting from cached binaries takes seconds; building them cold about 10 minutes.
CLUSTER_UP_TIMEOUT_S = 1200


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


def _run_script(name: str, timeout: float) -> None:
    script = REPO_ROOT / "hack" / "kwok-cluster.sh"
    result = subprocess.run(
        [str(script), name], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise ClusterUnavailableError(
            f"hack/kwok-cluster.sh {name} failed with exit code {result.returncode}:\n{output}"
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
        if kubeconfig_answers(LOCAL_KUBECONFIG):
            return cls(kubeconfig=LOCAL_KUBECONFIG, started_here=False)
        _run_script("up", CLUSTER_UP_TIMEOUT_S)
        if not kubeconfig_answers(LOCAL_KUBECONFIG, timeout=15.0):
            raise ClusterUnavailableError(
                f"hack/kwok-cluster.sh up ran but {LOCAL_KUBECONFIG} does not answer"
            )
        return cls(kubeconfig=LOCAL_KUBECONFIG, started_here=True)

    def stop(self) -> None:
        """Stop the local cluster if this session started it; a cluster found running is left running."""
        if self.started_here:
            _run_script("down", 300)
