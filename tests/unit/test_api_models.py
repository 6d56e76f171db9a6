"""The API models read raw API objects and write API JSON back."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from assay.api import (
    API_VERSION,
    EVALUATION_PLURAL,
    GROUP,
    POOL_PLURAL,
    VERSION,
    Condition,
    ConditionStatus,
    ConditionType,
    Evaluation,
    EvaluationSpec,
    EvaluationStatus,
    LabelSelector,
    Phase,
    Reason,
    ResourcePool,
    Results,
    TaskCounts,
    find_condition,
    headline_of,
    set_condition,
)
from assay.api.crdgen import crd_for
from assay.contract import Step


def raw_evaluation(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "Evaluation",
        "metadata": {
            "name": "mnist",
            "namespace": "team-a",
            "uid": "1234",
            "generation": 2,
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "labels": {"team": "a"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "pool": "a100-80g",
            "model": {"name": "mnist-cnn", "version": "v3", "uri": "pvc://models/mnist-cnn/v3"},
            "handler": "mnist_eval:MNISTEvaluator",
            "dataset": {"name": "mnist-test", "version": "v1", "uri": "pvc://datasets/mnist/v1"},
            "runtime": {"name": "pytorch", "version": "2.4", "image": "registry.example.com/rt:2.4"},
            "tasks": 4,
            "resources": {"nvidia.com/gpu": 1, "cpu": "4", "memory": "16Gi"},
            "output": {"pvc": "eval-results"},
            **spec,
        },
    }


def test_constants() -> None:
    assert (GROUP, VERSION, API_VERSION) == ("assay.dev", "v1alpha1", "assay.dev/v1alpha1")
    assert (EVALUATION_PLURAL, POOL_PLURAL) == ("evaluations", "resourcepools")


def test_evaluation_reads_a_raw_api_object() -> None:
    evaluation = Evaluation.model_validate(raw_evaluation())
    assert evaluation.name == "mnist"
    assert evaluation.namespace == "team-a"
    assert evaluation.metadata.generation == 2
    assert evaluation.metadata.creation_timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert evaluation.spec.model.uri == "pvc://models/mnist-cnn/v3"
    # the apiserver stores `nvidia.com/gpu: 1` as an integer; the model always holds strings
    assert evaluation.spec.resources == {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"}
    assert evaluation.spec.suspend is False and evaluation.spec.cancel is False
    assert evaluation.spec.backoff_limit_per_task == 1
    assert evaluation.status.phase is None


def test_evaluation_round_trips_to_api_json() -> None:
    raw = raw_evaluation(autoReleaseSeconds=600, backoffLimitPerTask=2)
    api = Evaluation.model_validate(raw).to_api()
    assert api["spec"]["autoReleaseSeconds"] == 600
    assert api["spec"]["backoffLimitPerTask"] == 2
    assert "auto_release_seconds" not in api["spec"]
    assert api["metadata"]["managedFields"] == [{"manager": "kubectl"}]  # unknown metadata is kept
    assert api["metadata"]["creationTimestamp"] == "2026-01-02T03:04:05Z"
    assert "batchSize" not in api["spec"]  # no nulls on the wire
    assert Evaluation.model_validate(api).to_api() == api


def test_models_accept_snake_case_names_too() -> None:
    spec = EvaluationSpec.model_validate(raw_evaluation(auto_release_seconds=120)["spec"])
    assert spec.auto_release_seconds == 120


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("handler", "no_colon"),
        ("handler", "mod:attr:extra"),
        ("handler", "1mod:attr"),
        ("tasks", 0),
        ("tasks", 1001),
        ("resources", {"cpu": "-1"}),
        ("resources", {"memory": "16GB"}),
        ("pool", "Not_A_Name"),
        ("backoffLimitPerTask", 11),
    ],
)
def test_spec_rejects_invalid_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Evaluation.model_validate(raw_evaluation(**{field: value}))


def test_status_times_serialise_as_rfc3339_utc() -> None:
    cest = timezone(timedelta(hours=2))
    status = EvaluationStatus(
        phase=Phase.RUNNING,
        start_time=datetime(2026, 1, 2, 5, 4, 5, 999, tzinfo=cest),
        expires_at=datetime(2026, 1, 2, 4, 4, 5),  # naive = UTC
    )
    api = status.to_api()
    assert api["startTime"] == "2026-01-02T03:04:05Z"
    assert api["expiresAt"] == "2026-01-02T04:04:05Z"
    assert api["phase"] == "Running"


def test_status_derives_progress_and_headline() -> None:
    status = EvaluationStatus(
        task_counts=TaskCounts(total=5, succeeded=3, running=2),
        results=Results(summary={"accuracy": 0.991234, "macro avg/f1": 0.99}, records=10000),
    )
    api = status.to_api()
    assert api["progress"] == "3/5"
    assert api["headline"] == "accuracy=0.9912"
    assert EvaluationStatus.model_validate(api).headline == "accuracy=0.9912"


def test_headline_of() -> None:
    assert headline_of({}) is None
    assert headline_of({"ok": True}) == "ok=True"
    assert headline_of({"n": 3}) == "n=3"


def test_task_status_reads_api_json() -> None:
    status = EvaluationStatus.model_validate(
        {"tasks": [{"step": "predict", "index": 0, "phase": "Failed", "exitCode": 12, "attempts": 2}]}
    )
    task = status.tasks[0]
    assert (task.step, task.exit_code, task.attempts) == (Step.PREDICT, 12, 2)


def test_terminal_phases() -> None:
    terminal = {p for p in Phase if p.is_terminal}
    assert terminal == {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED, Phase.EXPIRED}


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=1)
    conditions = set_condition([], ConditionType.RUNNING, True, Reason.TASKS_RUNNING, "2 running", now=t0)
    same = set_condition(conditions, ConditionType.RUNNING, True, Reason.TASKS_RUNNING, "3 running", now=t1)
    assert same[0].last_transition_time == t0 and same[0].message == "3 running"
    changed = set_condition(same, ConditionType.RUNNING, False, Reason.ALL_TASKS_SUCCEEDED, "", now=t1)
    assert changed[0].last_transition_time == t1 and changed[0].status == ConditionStatus.FALSE
    both = set_condition(changed, ConditionType.SUCCEEDED, True, Reason.ALL_TASKS_SUCCEEDED, "", now=t1)
    assert [c.type for c in both] == ["Running", "Succeeded"]
    found = find_condition(both, ConditionType.SUCCEEDED)
    assert found is not None and found.is_true


def test_condition_has_metav1_shape() -> None:
    condition = Condition(
        type=ConditionType.SUCCEEDED,
        status=ConditionStatus.TRUE,
        reason=Reason.ALL_TASKS_SUCCEEDED,
        message="5 of 5 tasks succeeded",
        last_transition_time=datetime(2026, 1, 1, tzinfo=UTC),
        observed_generation=1,
    )
    assert condition.to_api() == {
        "type": "Succeeded",
        "status": "True",
        "reason": "AllTasksSucceeded",
        "message": "5 of 5 tasks succeeded",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    with pytest.raises(ValidationError):
        Condition(type="Ready", status="Yes", reason="X", last_transition_time=datetime.now(UTC))


def test_pool_reads_a_raw_api_object() -> None:
    pool = ResourcePool.model_validate(
        {
            "apiVersion": "assay.dev/v1alpha1",
            "kind": "ResourcePool",
            "metadata": {"name": "a100-80g"},
            "spec": {
                "nodeSelector": {"gpu.example.com/type": "a100-80g"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "resources": [{"name": "nvidia.com/gpu", "default": 1, "min": "0", "max": "8"}],
                "quota": {"nvidia.com/gpu": 16},
                "pricing": {"perHour": {"nvidia.com/gpu": "2.50"}},
                "autoRelease": {"defaultSeconds": 1800, "maxSeconds": 86400},
            },
            "status": {"capacity": {"nvidia.com/gpu": "24"}, "inUse": {}, "runningEvaluations": 2},
        }
    )
    bounds = pool.bounds_for("nvidia.com/gpu")
    assert bounds is not None and (bounds.default, bounds.max) == ("1", "8")
    assert pool.bounds_for("cpu") is None
    assert pool.spec.quota == {"nvidia.com/gpu": "16"}
    assert pool.spec.pricing is not None and pool.spec.pricing.currency == "USD"
    assert pool.spec.auto_release is not None and pool.spec.auto_release.max_seconds == 86400
    assert pool.status.running_evaluations == 2
    api = pool.to_api()
    assert api["spec"]["tolerations"][0] == {
        "key": "nvidia.com/gpu",
        "operator": "Exists",
        "effect": "NoSchedule",
    }


def test_label_selector_matches() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"team": "a"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["gold", "silver"]},
                {"key": "frozen", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches({"team": "a", "tier": "gold"})
    assert not selector.matches({"team": "a", "tier": "bronze"})
    assert not selector.matches({"team": "b", "tier": "gold"})
    assert not selector.matches({"team": "a", "tier": "gold", "frozen": "yes"})
    assert LabelSelector().matches({})


def test_kubectls_cost_column_shows_the_currency() -> None:
    priced = EvaluationStatus.model_validate({"cost": {"currency": "EUR", "accrued": "1.50"}}).cost
    assert priced is not None and priced.to_api()["shown"] == "1.50 EUR"
    unpriced = EvaluationStatus.model_validate({"cost": {"currency": "EUR"}}).cost
    assert unpriced is not None and "shown" not in unpriced.to_api()
    columns = crd_for(Evaluation)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert {c["name"]: c["jsonPath"] for c in columns}["Cost"] == ".status.cost.shown"
