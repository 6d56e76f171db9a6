"""Leader election with kopf peering: run several replicas, exactly one acts, another takes over when it dies.

kopf's peering is not a lock: every replica writes a keep-alive (identity, priority, lifetime) into the
``status`` of one ``ClusterKopfPeering`` object, and a replica pauses all its handlers while a live peer
with a higher priority exists. Replicas with *equal* priorities all pause, so each replica needs its own:
we use the start time, negated, so the oldest replica leads and a newcomer (a rolling update, a restarted
pod) waits instead of pre-empting the leader in the middle of a reconcile.

Failover: a leader that exits cleanly withdraws its keep-alive at once; a leader that is killed stops
renewing it and is presumed dead ``lifetime`` seconds after its last renewal, when the next-oldest replica
resumes. With the default lifetime of 30 s a replica takes over at most ~30 s after the leader dies.

Peering is mandatory when a peering name is given: a replica starts paused and stays paused until it has
seen the peering object, so two replicas never both act at start-up. The CRD comes with the manifests
(manifests/base/peering.yaml); the object itself (``ClusterKopfPeering`` named :data:`DEFAULT_PEERING_NAME`)
is created by :func:`ensure_peering_object` at start-up, because an object of a kind whose CRD is created
by the same ``kubectl apply`` cannot be applied in one go.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time

import kopf
from kopf._core.engines.peering import Identity  # kopf.operator's identity type; kopf does not re-export it
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

logger = logging.getLogger(__name__)

PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL = "kopf.dev", "v1", "clusterkopfpeerings"

DEFAULT_PEERING_NAME = "assay"
DEFAULT_PEERING_LIFETIME_SECONDS = 30


def peer_identity(host: str | None = None) -> Identity:
    """This process's name in the peering: its host (a pod's name) and a random part, unique per start.

    kopf's own default puts the user name first, from ``getpass.getuser()``, which raises for a UID with no
    passwd entry: the images run as UID 65532 and have none, so the pods would crash at start-up.
    """
    return Identity(f"{host or socket.gethostname()}/{secrets.token_hex(4)}")


def leader_priority(started_at: float) -> int:
    """Peering priority of a replica started at ``started_at`` (epoch seconds): older is higher.

    Microsecond resolution makes equal priorities (which would pause both replicas) practically impossible;
    the value stays well inside the 53 bits a JSON number carries exactly.
    """
    return -round(started_at * 1_000_000)


def configure_peering(
    settings: kopf.OperatorSettings,
    *,
    peering_name: str | None = DEFAULT_PEERING_NAME,
    lifetime_seconds: int = DEFAULT_PEERING_LIFETIME_SECONDS,
    started_at: float | None = None,
) -> None:
    """Set kopf's peering settings; call it from a ``@kopf.on.startup`` handler.

    ``peering_name`` empty or None runs standalone (one replica, e.g. a developer's laptop). Peering is
    cluster-wide even when the operator watches a list of namespaces: the replicas of one installation
    must see each other whatever they watch.
    """
    if not peering_name:
        settings.peering.standalone = True
        settings.peering.mandatory = False
        return
    if lifetime_seconds < 10:
        raise ValueError(
            f"peering lifetime must be at least 10 s (keep-alives renew 5-10 s early), got {lifetime_seconds}"
        )
    settings.peering.standalone = False
    settings.peering.mandatory = True
    settings.peering.clusterwide = True
    settings.peering.name = peering_name
    settings.peering.lifetime = lifetime_seconds
    settings.peering.priority = leader_priority(time.time() if started_at is None else started_at)
    # Keep-alives every ~25 s would otherwise fill the log at debug level.
    settings.peering.stealth = True


async def ensure_peering_object(api: client.ApiClient, name: str = DEFAULT_PEERING_NAME) -> bool:
    """Create the ``ClusterKopfPeering`` the replicas meet in, unless it exists; True if created here."""
    body = {
        "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "assay"}},
    }
    try:
        await client.CustomObjectsApi(api).create_cluster_custom_object(
            PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL, body
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        if exc.status == 404:
            raise RuntimeError(
                "the ClusterKopfPeering CRD is missing: apply manifests/base/peering.yaml "
                "(kubectl apply -k manifests/ does), or run standalone with an empty peering name"
            ) from exc
        raise
    logger.info("Created ClusterKopfPeering %s for leader election", name)
    return True
