"""Checks of an Evaluation against its pool, namespace and debug Secret."""

from decimal import Decimal
from typing import Any

import pytest

from assay.admission import (
    Problem,
    check_evaluation_update,
    check_new_evaluation,
    describe,
    namespace_may_use,
    pool_needs_namespace_labels,
)
from assay.api import EvaluationSpec, Reason, ResourcePool
from assay.api.resources import (
    effective_auto_release_seconds,
    effective_requests,
    estimated_max_cost,
    price_per_hour,
    task_resources,
)


def make_pool(**spec: Any) -> ResourcePool:
    base: dict[str, Any] = {
        "resources": [
            {"name": "nvidia.com/gpu", "default": "1", "min": "0", "max": "8"},
            {"name": "cpu", "default": "4", "max": "32"},
            {"name": "memory", "default": "16Gi", "max": "256Gi"},
        ],
        "quota": {"nvidia.com/gpu": "16"},
        "pricing": {
            "currency": "USD",
            "perHour": {"nvidia.com/gpu": "2.50", "cpu": "0.04", "memory": "0.005"},
        },
    }
    return ResourcePool.model_validate({"metadata": {"name": "a100"}, "spec": {**base, **spec}})


def make_spec(**fields: Any) -> EvaluationSpec:
    return EvaluationSpec.model_validate(
        {
            "pool": "a100",
            "model": {"name": "m", "uri": "pvc://models/m"},
            "handler": "mod:Attr",
            "dataset": {"name": "d", "uri": "pvc://data/d"},
            "runtime": {"image": "rt:1"},
            **fields,
        }
    )


def check(spec: EvaluationSpec, pool: ResourcePool | None, **kwargs: Any) -> list[Problem]:
    return check_new_evaluation(spec, namespace="team-a", pool=pool, **kwargs)


def test_a_fitting_evaluation_passes() -> None:
    assert check(make_spec(tasks=4, resources={"nvidia.com/gpu": "2", "memory": "64Gi"}), make_pool()) == []


def test_unknown_pool_is_named() -> None:
    [problem] = check(make_spec(), None)
    assert problem.reason == Reason.UNKNOWN_POOL
    assert '"a100" does not exist' in problem.message and "kubectl get resourcepools" in problem.message


def test_namespace_not_listed_is_forbidden() -> None:
    [problem] = check(make_spec(), make_pool(namespaces=["team-b"]))
    assert problem.reason == Reason.POOL_FORBIDDEN
    assert '"team-a"' in problem.message and '"a100"' in problem.message


def test_namespace_access_by_list_or_selector() -> None:
    open_pool = make_pool()
    listed = make_pool(namespaces=["team-a"])
    selected = make_pool(namespaceSelector={"matchLabels": {"gpu-access": "yes"}})
    either = make_pool(namespaces=["team-b"], namespaceSelector={"matchLabels": {"gpu-access": "yes"}})
    assert namespace_may_use(open_pool, "x", None)
    assert namespace_may_use(listed, "team-a", None)
    assert not namespace_may_use(listed, "team-c", None)
    assert namespace_may_use(selected, "x", {"gpu-access": "yes"})
    assert not namespace_may_use(selected, "x", {})
    assert not namespace_may_use(selected, "x", None)
    assert namespace_may_use(either, "team-b", {}) and namespace_may_use(either, "x", {"gpu-access": "yes"})
    assert pool_needs_namespace_labels(selected) and not pool_needs_namespace_labels(listed)
    assert check(make_spec(), selected, namespace_labels={"gpu-access": "yes"}) == []


@pytest.mark.parametrize(
    ("resources", "field", "shown"),
    [
        ({"nvidia.com/gpu": "9"}, "spec.resources[nvidia.com/gpu]", "9 is outside pool a100's range [0, 8]"),
        ({"memory": "300Gi"}, "spec.resources[memory]", "300Gi is outside pool a100's range [0, 256Gi]"),
        ({"nvidia.com/gpu": "500m"}, "spec.resources[nvidia.com/gpu]", "not a whole number"),
    ],
)
def test_resources_out_of_range_name_resource_value_and_range(
    resources: dict[str, str], field: str, shown: str
) -> None:
    [problem] = check(make_spec(resources=resources), make_pool())
    assert problem.reason == Reason.RESOURCES_OUT_OF_RANGE
    assert problem.field == field
    assert shown in problem.message


def test_below_min_is_out_of_range() -> None:
    pool = make_pool(resources=[{"name": "cpu", "default": "2", "min": "1", "max": "4"}])
    [problem] = check(make_spec(resources={"cpu": "500m"}), pool)
    assert "500m is outside pool a100's range [1, 4]" in problem.message


def test_resources_the_pool_does_not_list_are_unbounded() -> None:
    assert check(make_spec(resources={"example.com/fpga": "3"}), make_pool()) == []


def test_more_than_the_whole_quota_can_never_run() -> None:
    [problem] = check(make_spec(tasks=3, resources={"nvidia.com/gpu": "8"}), make_pool())
    assert problem.reason == Reason.EXCEEDS_POOL_QUOTA
    assert "24 at once" in problem.message and "quota of 16" in problem.message


def test_auto_release_within_pool_maximum() -> None:
    pool = make_pool(autoRelease={"defaultSeconds": 600, "maxSeconds": 7200})
    assert check(make_spec(), pool) == []
    assert check(make_spec(autoReleaseSeconds=7200), pool) == []
    [too_long] = check(make_spec(autoReleaseSeconds=7201), pool)
    assert too_long.reason == Reason.AUTO_RELEASE_TOO_LONG and "maximum of 7200" in too_long.message
    [never] = check(make_spec(autoReleaseSeconds=0), pool)
    assert "0 (never)" in never.message


def test_debug_secret_must_exist_with_its_key() -> None:
    spec = make_spec(debug={"enabled": True, "passwordSecretRef": {"name": "dbg"}})
    [missing] = check(spec, make_pool(), debug_secret_lengths=None)
    assert missing.reason == Reason.SECRET_NOT_FOUND
    assert 'Secret "dbg" not found in namespace "team-a"' in missing.message
    [no_key] = check(spec, make_pool(), debug_secret_lengths={"other": 40})
    assert 'no key "password"' in no_key.message
    assert check(spec, make_pool(), debug_secret_lengths={"password": 40}) == []
    # no secret named: the operator generates one, nothing to look up
    assert check(make_spec(debug={"enabled": True}), make_pool()) == []


def test_update_checks_only_what_may_change() -> None:
    pool = make_pool(autoRelease={"maxSeconds": 3600})
    old = make_spec(autoReleaseSeconds=600)
    assert check_evaluation_update(old, old.model_copy(update={"suspend": True}), pool=pool) == []
    assert check_evaluation_update(old, old, pool=None) == []  # pool gone: finalizers must still go
    [problem] = check_evaluation_update(old, old.model_copy(update={"auto_release_seconds": 9000}), pool=pool)
    assert problem.reason == Reason.AUTO_RELEASE_TOO_LONG


def test_describe_joins_problems() -> None:
    problems = check(make_spec(resources={"nvidia.com/gpu": "9", "cpu": "64"}), make_pool())
    assert describe(problems).count("spec.resources[") == 2


def test_effective_requests_merge_pool_defaults_and_drop_zeros() -> None:
    pool = make_pool()
    assert effective_requests(make_spec(), pool) == {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"}
    spec = make_spec(resources={"nvidia.com/gpu": "0", "cpu": "8"})
    assert effective_requests(spec, pool) == {"cpu": "8", "memory": "16Gi"}
    assert effective_requests(spec, None) == {"cpu": "8"}


def test_task_resources_gpu_limit_equals_request() -> None:
    resources = task_resources(make_spec(resources={"nvidia.com/gpu": "2"}), make_pool())
    assert resources.requests["nvidia.com/gpu"] == "2"
    assert resources.limits == {"nvidia.com/gpu": "2"}
    assert resources.gpus == 2
    cpu_only = task_resources(make_spec(resources={"nvidia.com/gpu": "0"}), make_pool())
    assert cpu_only.gpus == 0 and "limits" not in cpu_only.to_api()


def test_auto_release_seconds_precedence() -> None:
    assert effective_auto_release_seconds(make_spec(), None) == 3600
    pool = make_pool(autoRelease={"defaultSeconds": 900})
    assert effective_auto_release_seconds(make_spec(), pool) == 900
    assert effective_auto_release_seconds(make_spec(autoReleaseSeconds=0), pool) == 0


def test_cost() -> None:
    pool = make_pool()
    per_task = {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"}
    assert pool.spec.pricing is not None
    # 2.50 + 4 x 0.04 + 16 x 0.005 = 2.74 per task-hour
    assert price_per_hour(per_task, 2, pool.spec.pricing) == Decimal("5.48")
    assert estimated_max_cost(make_spec(tasks=2, autoReleaseSeconds=1800), pool) == Decimal("2.74")
    assert estimated_max_cost(make_spec(autoReleaseSeconds=0), pool) is None
    assert estimated_max_cost(make_spec(), make_pool(pricing=None)) is None


def test_a_debug_password_shorter_than_the_minimum_is_refused_with_the_rule() -> None:
    spec = make_spec(debug={"enabled": True, "passwordSecretRef": {"name": "dbg", "key": "pw"}})
    [short] = check(spec, make_pool(), debug_secret_lengths={"pw": 15})
    assert short.reason == Reason.DEBUG_PASSWORD_TOO_SHORT and short.field == "spec.debug.passwordSecretRef"
    assert 'key "pw" of Secret "dbg" holds 15 characters' in short.message
    assert "at least 16 characters" in short.message
    [empty] = check(spec, make_pool(), debug_secret_lengths={"pw": 0})
    assert empty.reason == Reason.DEBUG_PASSWORD_TOO_SHORT
    assert check(spec, make_pool(), debug_secret_lengths={"pw": 16}) == []


def test_a_pool_that_refuses_unlisted_resources_names_the_resource_and_the_pool() -> None:
    pool = make_pool(unlistedResources="Refuse")
    problems = check(make_spec(resources={"nvidia.com/gpu": "1", "example.com/fpga": "1"}), pool)
    assert [(p.reason, p.field) for p in problems] == [
        (Reason.RESOURCE_NOT_LISTED, "spec.resources[example.com/fpga]")
    ]
    assert problems[0].message == (
        "pool a100 does not offer example.com/fpga (it refuses resources its spec.resources does not list; "
        "it lists nvidia.com/gpu, cpu, memory); remove the request or choose another pool"
    )


def test_unlisted_resources_are_allowed_by_default() -> None:
    assert make_pool().spec.unlisted_resources == "Allow"
    assert check(make_spec(resources={"example.com/fpga": "1"}), make_pool()) == []
