"""Leader election: a newcomer registers below every live peer; kopf's settings; standalone without a name."""

from __future__ import annotations

import datetime

import kopf
import pytest
from kopf._core.engines.peering import Identity, Peer

from assay.controller.leadership import (
    configure_peering,
    keepalive_entry,
    peer_identity,
    priority_below_live_peers,
)

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)


def keepalive(priority: int, seconds_ago: float, lifetime: int = 30) -> dict[str, object]:
    return keepalive_entry(priority, lifetime, NOW - datetime.timedelta(seconds=seconds_ago))


def test_a_replica_alone_takes_priority_zero() -> None:
    assert priority_below_live_peers(None, identity="me", now=NOW) == 0
    assert priority_below_live_peers({}, identity="me", now=NOW) == 0


def test_a_newcomer_goes_below_every_live_peer() -> None:
    status = {"leader": keepalive(0, 5), "follower": keepalive(-1, 20)}
    assert priority_below_live_peers(status, identity="me", now=NOW) == -2


def test_dead_and_withdrawn_peers_do_not_count() -> None:
    status = {"killed": keepalive(0, 31), "stopped": None, "live": keepalive(-3, 1)}
    assert priority_below_live_peers(status, identity="me", now=NOW) == -4


def test_a_replica_re_registering_ignores_its_own_entry() -> None:
    status = {"me": keepalive(-7, 1), "other": keepalive(2, 1)}
    assert priority_below_live_peers(status, identity="me", now=NOW) == 1


def test_a_keepalive_without_a_readable_lastseen_is_not_live() -> None:
    status = {"odd": {"priority": 5, "lifetime": 30, "lastseen": "yesterday"}, "bare": {"priority": 9}}
    assert priority_below_live_peers(status, identity="me", now=NOW) == 0


def test_kopf_reads_our_keepalive_as_a_live_peer_of_that_priority() -> None:
    entry = keepalive_entry(-2, 30, datetime.datetime.now(datetime.UTC))
    peer = Peer(identity=Identity("me"), **entry)
    assert peer.priority == -2 and not peer.is_dead


def test_named_peering_is_mandatory_and_cluster_wide() -> None:
    settings = kopf.OperatorSettings()
    configure_peering(settings, peering_name="assay", lifetime_seconds=30)
    assert settings.peering.name == "assay"
    assert settings.peering.mandatory and not settings.peering.standalone
    assert settings.peering.clusterwide
    assert settings.peering.lifetime == 30


def test_no_peering_name_runs_standalone() -> None:
    settings = kopf.OperatorSettings()
    configure_peering(settings, peering_name="")
    assert settings.peering.standalone and not settings.peering.mandatory


def test_a_lifetime_shorter_than_the_renewal_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10 s"):
        configure_peering(kopf.OperatorSettings(), peering_name="assay", lifetime_seconds=5)


def test_a_peer_identity_needs_no_user_name_and_is_unique_per_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The images run as a UID with no passwd entry: kopf's default identity (getpass) would raise there."""
    import getpass

    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found: 65532")

    monkeypatch.setattr(getpass, "getuser", no_user)
    first, second = peer_identity("assay-operator-abc"), peer_identity("assay-operator-abc")
    assert first.startswith("assay-operator-abc/") and second.startswith("assay-operator-abc/")
    assert first != second
