"""Leader election with kopf peering: run several replicas, exactly one acts, another takes over when it dies.

kopf's peering is not a lock: every replica writes a keep-alive (identity, priority, lifetime) into the
``status`` of one ``ClusterKopfPeering`` object, and a replica pauses all its handlers while a live peer
with a higher priority exists. Two things make it one:

- **Registration order is priority.** Before kopf starts watching, a replica registers with a priority
  below every live peer's, written with the object's resourceVersion (a conflict re-reads and retries).
  So a newcomer (a rolling update, a restarted pod, two pods started at once) can never outrank a replica
  that may already act, and the oldest registered replica leads. A priority taken from the start time
  instead let two pods started together both act for a moment: the younger one saw the object before
  the older one's keep-alive was in it.
- **Mandatory peering.** A replica starts paused and stays paused until it has seen the peering object,
  and kopf's watch of it starts after the registration, so it always sees every replica registered
  before it.

Failover: a leader that exits cleanly withdraws its keep-alive at once; a leader that is killed stops
renewing it and is presumed dead ``lifetime`` seconds after its last renewal, when the next-registered
replica resumes. With the default lifetime of 30 s a replica takes over at most ~30 s after the leader dies.

The CRD comes with the manifests (manifests/base/peering.yaml); the object itself (``ClusterKopfPeering``
named :data:`DEFAULT_PEERING_NAME`) is created by :func:`ensure_peering_object` at start-up, because an
object of a kind whose CRD is created by the same ``kubectl apply`` cannot be applied in one go.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import socket
from collections.abc import Callable, Mapping
from typing import Any

import kopf

# kopf.operator's identity type; kopf does not re-export it, this module does (for main).
from kopf._core.engines.peering import Identity as Identity
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from assay.controller.kube import MERGE_PATCH

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


def priority_below_live_peers(
    status: Mapping[str, object] | None, *, identity: str, now: datetime.datetime
) -> int:
    """The priority a replica registering now takes: one below every live peer's, 0 when it is alone.

    ``status`` is the peering object's status (identity -> {priority, lifetime, lastseen}, or None for a
    withdrawn one). A peer whose ``lastseen + lifetime`` has passed is dead and does not count: it can
    never act again under that identity.
    """
    live = [
        int(info.get("priority", 0))
        for peer, info in (status or {}).items()
        if peer != identity and isinstance(info, Mapping) and _alive(info, now)
    ]
    return min(live) - 1 if live else 0


def _alive(keepalive: Mapping[str, Any], now: datetime.datetime) -> bool:
    try:
        lastseen = datetime.datetime.fromisoformat(str(keepalive["lastseen"]))
        lifetime = datetime.timedelta(seconds=int(keepalive.get("lifetime", 60)))
    except (KeyError, TypeError, ValueError):
        return False  # not a keep-alive kopf would honour either
    if lastseen.tzinfo is None:
        lastseen = lastseen.replace(tzinfo=datetime.UTC)
    return lastseen + lifetime > now


def keepalive_entry(priority: int, lifetime_seconds: int, now: datetime.datetime) -> dict[str, object]:
    """One replica's keep-alive in the shape kopf writes and reads (kopf's ``Peer.as_dict``)."""
    return {"priority": priority, "lifetime": lifetime_seconds, "lastseen": now.isoformat()}


def configure_peering(
    settings: kopf.OperatorSettings,
    *,
    peering_name: str | None = DEFAULT_PEERING_NAME,
    lifetime_seconds: int = DEFAULT_PEERING_LIFETIME_SECONDS,
) -> None:
    """Set kopf's peering settings; call it from a ``@kopf.on.startup`` handler, then :func:`register_peer`.

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


async def register_peer(
    api: client.ApiClient,
    settings: kopf.OperatorSettings,
    identity: str,
    *,
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> int:
    """Write this replica's first keep-alive below every live peer and keep that priority in ``settings``.

    The write carries the resourceVersion it was computed from, so two replicas registering at once cannot
    both take the top priority: the second one's write conflicts, it re-reads and goes below the first.
    Call it after :func:`configure_peering` and :func:`ensure_peering_object`; kopf's own keep-alives then
    renew the entry with the same priority.
    """
    name, lifetime = settings.peering.name, settings.peering.lifetime
    objects = client.CustomObjectsApi(api)
    while True:
        peering = await objects.get_cluster_custom_object(
            PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL, name
        )
        now = clock()
        priority = priority_below_live_peers(peering.get("status"), identity=identity, now=now)
        patch = {
            "metadata": {"resourceVersion": peering["metadata"]["resourceVersion"]},
            "status": {identity: keepalive_entry(priority, lifetime, now)},
        }
        as_merge_patch: dict[str, Any] = {"_content_type": MERGE_PATCH}  # not in the client's stubs
        try:
            await objects.patch_cluster_custom_object(
                PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL, name, patch, **as_merge_patch
            )
        except ApiException as exc:
            if exc.status == 409:
                continue  # another replica registered (or renewed) meanwhile: re-read and go below it
            raise
        settings.peering.priority = priority
        logger.info("Registered in peering %s with priority %d (%s)", name, priority, identity)
        return priority
