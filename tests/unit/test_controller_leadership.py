"""Leader-election settings: distinct priorities, oldest first, and standalone when no peering is named."""

from __future__ import annotations

import kopf
import pytest

from assay.controller.leadership import configure_peering, leader_priority


def test_an_older_replica_has_the_higher_priority() -> None:
    assert leader_priority(1_800_000_000.0) > leader_priority(1_800_000_000.5)


def test_replicas_started_a_microsecond_apart_differ() -> None:
    assert leader_priority(1_800_000_000.000001) != leader_priority(1_800_000_000.000002)


def test_priorities_fit_a_json_number_exactly() -> None:
    assert abs(leader_priority(4_000_000_000.0)) < 2**53


def test_named_peering_is_mandatory_and_cluster_wide() -> None:
    settings = kopf.OperatorSettings()
    configure_peering(settings, peering_name="assay", lifetime_seconds=30, started_at=1_800_000_000.0)
    assert settings.peering.name == "assay"
    assert settings.peering.mandatory and not settings.peering.standalone
    assert settings.peering.clusterwide
    assert settings.peering.lifetime == 30
    assert settings.peering.priority == leader_priority(1_800_000_000.0)


def test_no_peering_name_runs_standalone() -> None:
    settings = kopf.OperatorSettings()
    configure_peering(settings, peering_name="")
    assert settings.peering.standalone and not settings.peering.mandatory


def test_a_lifetime_shorter_than_the_renewal_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10 s"):
        configure_peering(kopf.OperatorSettings(), peering_name="assay", lifetime_seconds=5)
