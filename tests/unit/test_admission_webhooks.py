"""Admission handlers: a refusal is a 422 naming the fix; an update touching nothing checked reads nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest
from admission_fakes import FakeCluster, pool_body

from assay.controller.admission.webhooks import (
    SET_WEBHOOK_ID,
    WEBHOOK_ID,
    validate_evaluation,
    validate_evaluation_set,
)
from assay.controller.kopf_handlers import build_registry

SPEC: dict[str, Any] = {
    "pool": "a100",
    "model": {"name": "m", "uri": "pvc://models/m"},
    "handler": "mod:Attr",
    "dataset": {"name": "d", "uri": "pvc://data/d"},
    "runtime": {"image": "rt:1"},
}
POOL = pool_body(resources=[{"name": "nvidia.com/gpu", "default": "1", "max": "2"}])


async def validate(fake: FakeCluster, spec: dict[str, Any], **kwargs: Any) -> None:
    body: Any = {"spec": spec}
    await validate_evaluation(body=body, namespace="team-a", memo=SimpleNamespace(cluster=fake), **kwargs)


async def test_an_evaluation_that_fits_its_pool_is_admitted() -> None:
    fake = FakeCluster(pools={"a100": POOL})
    await validate(fake, {**SPEC, "resources": {"nvidia.com/gpu": "2"}}, operation="CREATE")
    assert fake.reads == [("pool", "a100")]


async def test_a_creation_that_cannot_run_is_refused_with_a_422_naming_the_fix() -> None:
    fake = FakeCluster(pools={"a100": POOL})
    with pytest.raises(kopf.AdmissionError) as refused:
        await validate(fake, {**SPEC, "resources": {"nvidia.com/gpu": "3"}}, operation="CREATE")
    assert refused.value.code == 422
    assert "nvidia.com/gpu" in str(refused.value) and "2" in str(refused.value)


async def test_an_update_that_keeps_auto_release_is_not_checked_and_reads_nothing() -> None:
    fake = FakeCluster()  # no pool at all: a check would refuse
    await validate(fake, {**SPEC, "suspend": True}, old={"spec": SPEC}, operation="UPDATE")
    assert fake.reads == []


async def test_an_update_of_auto_release_is_checked_against_the_pool() -> None:
    bounded = pool_body(autoRelease={"defaultSeconds": 600, "maxSeconds": 3600})
    fake = FakeCluster(pools={"a100": bounded})
    await validate(fake, {**SPEC, "autoReleaseSeconds": 3600}, old={"spec": SPEC}, operation="UPDATE")
    with pytest.raises(kopf.AdmissionError) as refused:
        await validate(fake, {**SPEC, "autoReleaseSeconds": 3601}, old={"spec": SPEC}, operation="UPDATE")
    assert refused.value.code == 422 and "spec.autoReleaseSeconds" in str(refused.value)
    assert fake.reads == [("pool", "a100"), ("pool", "a100")]


async def test_a_spec_the_models_cannot_read_is_refused_not_crashed_on() -> None:
    with pytest.raises(kopf.AdmissionError) as refused:
        await validate(FakeCluster(), {"pool": "a100"}, operation="CREATE")
    assert refused.value.code == 422 and "spec is not valid" in str(refused.value)


async def test_an_evaluation_set_that_is_no_valid_evaluation_is_refused() -> None:
    body: Any = {"spec": {"template": {"pool": "a100"}, "matrix": {}}}
    with pytest.raises(kopf.AdmissionError) as refused:
        await validate_evaluation_set(body=body)
    assert refused.value.code == 422


def validating_ids(registry: kopf.OperatorRegistry) -> set[str]:
    return {str(handler.id) for handler in registry._webhooks.get_all_handlers()}


def test_the_operator_registers_both_handlers_only_when_it_serves_them() -> None:
    """kopf serves each at /<id> (the paths of manifests/base/webhook.yaml; tests/unit/test_manifests.py)."""
    assert validating_ids(build_registry(serve_webhook=True)) == {WEBHOOK_ID, SET_WEBHOOK_ID}
    assert validating_ids(build_registry(serve_webhook=False)) == set()
