"""What admission reads from the API: only what the checks need, and each value's length, never the value."""

from __future__ import annotations

from typing import Any

import pytest
from admission_fakes import FakeCluster, encoded, pool, pool_body
from test_admission import make_spec as spec

from assay.api import Reason
from assay.controller.admission.reads import evaluation_problems, find_pool, value_lengths

DEBUG = {"enabled": True, "passwordSecretRef": {"name": "dbg", "key": "pw"}}


async def test_an_open_pool_and_no_debug_secret_need_no_read() -> None:
    fake = FakeCluster()
    assert await evaluation_problems(fake.as_cluster(), spec(), "team-a", pool()) == []
    assert fake.reads == []


async def test_an_unknown_pool_is_refused_without_reading_anything_else() -> None:
    fake = FakeCluster(secrets={("team-a", "dbg"): {"pw": encoded("x" * 20)}})
    [problem] = await evaluation_problems(fake.as_cluster(), spec(debug=DEBUG), "team-a", None)
    assert problem.reason == Reason.UNKNOWN_POOL
    assert fake.reads == []


async def test_a_pool_selecting_namespaces_by_label_reads_the_namespace() -> None:
    selective = pool(namespaceSelector={"matchLabels": {"gpu-access": "yes"}})
    fake = FakeCluster(namespaces={"team-a": {"gpu-access": "yes"}, "team-b": {}})
    assert await evaluation_problems(fake.as_cluster(), spec(), "team-a", selective) == []
    [refused] = await evaluation_problems(fake.as_cluster(), spec(), "team-b", selective)
    assert refused.reason == Reason.POOL_FORBIDDEN
    assert fake.reads == [("namespace", "team-a"), ("namespace", "team-b")]


async def test_the_debug_secret_is_read_from_the_evaluations_namespace() -> None:
    fake = FakeCluster(secrets={("team-a", "dbg"): {"pw": encoded("x" * 15)}})
    [short] = await evaluation_problems(fake.as_cluster(), spec(debug=DEBUG), "team-a", pool())
    assert short.reason == Reason.DEBUG_PASSWORD_TOO_SHORT
    [missing] = await evaluation_problems(fake.as_cluster(), spec(debug=DEBUG), "team-b", pool())
    assert missing.field == "spec.debug.passwordSecretRef"
    assert fake.reads == [("secret", "team-a", "dbg"), ("secret", "team-b", "dbg")]


def test_lengths_count_characters_not_bytes() -> None:
    # 16 characters in 32 bytes of UTF-8: long enough for a 16-character minimum.
    assert value_lengths({"pw": encoded("ж" * 16), "empty": "", "unset": None}) == {
        "pw": 16,
        "empty": 0,
        "unset": 0,
    }
    assert value_lengths(None) is None


async def test_a_pool_comes_from_the_index_when_it_has_it() -> None:
    from_index = pool(quota={"nvidia.com/gpu": "4"})
    fake = FakeCluster(pools={"a100": pool_body(quota={"nvidia.com/gpu": "8"})})
    index: Any = {"a100": [from_index]}
    assert await find_pool(fake.as_cluster(), index, "a100") is from_index
    assert fake.reads == []


@pytest.mark.parametrize("index", [None, {}], ids=["no index yet", "index still filling"])
async def test_a_pool_missing_from_the_index_is_read_from_the_api(index: Any) -> None:
    fake = FakeCluster(pools={"a100": pool_body(quota={"nvidia.com/gpu": "8"})})
    found = await find_pool(fake.as_cluster(), index, "a100")
    assert found is not None and found.spec.quota == pool(quota={"nvidia.com/gpu": "8"}).spec.quota
    assert await find_pool(fake.as_cluster(), index, "h100") is None
    assert fake.reads == [("pool", "a100"), ("pool", "h100")]
