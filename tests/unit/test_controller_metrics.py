"""The operator's metrics move as the controller's calls say, and repeated observations change nothing."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from assay.controller.metrics import OperatorMetrics, start_metrics_server


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics(CollectorRegistry())


def value(m: OperatorMetrics, name: str, **labels: str) -> float:
    """The sample's value; a sample the registry does not have fails (a misspelled name must not read 0)."""
    sample = m.registry.get_sample_value(name, labels)
    assert sample is not None, f"no sample {name}{labels}"
    return sample


def test_evaluations_move_between_phases_without_double_counting(metrics: OperatorMetrics) -> None:
    metrics.observe_evaluation("u1", namespace="team-a", pool="a100", phase="Pending")
    metrics.observe_evaluation("u1", namespace="team-a", pool="a100", phase="Pending")
    metrics.observe_evaluation("u2", namespace="team-a", pool="a100", phase="Pending")
    assert value(metrics, "assay_evaluations", pool="a100", phase="Pending") == 2

    metrics.observe_evaluation("u1", namespace="team-a", pool="a100", phase="Running")
    assert value(metrics, "assay_evaluations", pool="a100", phase="Pending") == 1
    assert value(metrics, "assay_evaluations", pool="a100", phase="Running") == 1

    metrics.forget_evaluation("u1")
    metrics.forget_evaluation("u1")
    assert value(metrics, "assay_evaluations", pool="a100", phase="Running") == 0
    assert value(metrics, "assay_evaluations", pool="a100", phase="Pending") == 1


def test_tasks_count_live_work_only(metrics: OperatorMetrics) -> None:
    metrics.observe_evaluation(
        "u1", namespace="ns", pool="p", phase="Running", task_counts={"running": 3, "succeeded": 1}
    )
    metrics.observe_evaluation(
        "u1", namespace="ns", pool="p", phase="Running", task_counts={"running": 1, "succeeded": 3}
    )
    assert value(metrics, "assay_tasks", pool="p", phase="running") == 1
    assert value(metrics, "assay_tasks", pool="p", phase="succeeded") == 3

    metrics.observe_evaluation(
        "u1", namespace="ns", pool="p", phase="Succeeded", task_counts={"succeeded": 4}, terminal=True
    )
    assert value(metrics, "assay_tasks", pool="p", phase="running") == 0
    assert value(metrics, "assay_tasks", pool="p", phase="succeeded") == 0


def test_usage_counters_grow_by_the_difference_and_never_shrink(metrics: OperatorMetrics) -> None:
    metrics.observe_evaluation("u1", namespace="ns", pool="p", phase="Running", gpu_seconds=10, cost=0.5)
    metrics.observe_evaluation("u1", namespace="ns", pool="p", phase="Running", gpu_seconds=10, cost=0.5)
    metrics.observe_evaluation("u1", namespace="ns", pool="p", phase="Running", gpu_seconds=25, cost=1.25)
    metrics.observe_evaluation("u1", namespace="ns", pool="p", phase="Running", gpu_seconds=20, cost=1.0)
    assert value(metrics, "assay_gpu_seconds_total", pool="p", namespace="ns") == 25
    assert value(metrics, "assay_cost_total", pool="p", namespace="ns", currency="") == 1.25


def test_an_evaluation_first_seen_terminal_adds_no_usage(metrics: OperatorMetrics) -> None:
    """After a restart the operator re-reads finished evaluations; their usage was counted before."""
    metrics.observe_evaluation(
        "old", namespace="ns", pool="p", phase="Succeeded", gpu_seconds=3600, cost=2.5, terminal=True
    )
    assert (
        metrics.registry.get_sample_value("assay_gpu_seconds_total", {"pool": "p", "namespace": "ns"}) is None
    )
    assert value(metrics, "assay_evaluations", pool="p", phase="Succeeded") == 1
    # The same name and labels do count an Evaluation seen running first.
    metrics.observe_evaluation("new", namespace="ns", pool="p", phase="Running", gpu_seconds=60, cost=0.1)
    assert value(metrics, "assay_gpu_seconds_total", pool="p", namespace="ns") == 60


def test_latencies_are_observed_in_seconds(metrics: OperatorMetrics) -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    metrics.observe_jobs_created("p", created, now=created + timedelta(seconds=0.4))
    metrics.observe_status_final("p", created, now=created + timedelta(seconds=3))
    # A clock behind the apiserver's never gives a negative latency.
    metrics.observe_status_final("p", created, now=created - timedelta(seconds=1))
    assert value(metrics, "assay_jobs_created_latency_seconds_sum", pool="p") == pytest.approx(0.4)
    assert value(metrics, "assay_jobs_created_latency_seconds_bucket", pool="p", le="0.5") == 1
    assert value(metrics, "assay_status_final_latency_seconds_count", pool="p") == 2
    assert value(metrics, "assay_status_final_latency_seconds_sum", pool="p") == pytest.approx(3)


def test_reconcile_timer_counts_failed_calls_too(metrics: OperatorMetrics) -> None:
    with metrics.reconcile_timer("evaluation"):
        pass
    with pytest.raises(RuntimeError), metrics.reconcile_timer("evaluation"):
        raise RuntimeError("API error")
    assert value(metrics, "assay_reconcile_duration_seconds_count", handler="evaluation") == 2


def test_pool_gauges_and_rejections(metrics: OperatorMetrics) -> None:
    metrics.set_queue_length("p", 3)
    metrics.set_pool_resources("p", {"nvidia.com/gpu": 16}, {"nvidia.com/gpu": 4})
    metrics.set_pool_resources("p", {"nvidia.com/gpu": 16}, {})
    metrics.count_admission_rejection("UnknownPool", "webhook")
    metrics.count_admission_rejection("UnknownPool", "webhook")
    assert value(metrics, "assay_queue_length", pool="p") == 3
    assert value(metrics, "assay_pool_capacity", pool="p", resource="nvidia.com/gpu") == 16
    assert value(metrics, "assay_pool_in_use", pool="p", resource="nvidia.com/gpu") == 0
    assert value(metrics, "assay_admission_rejections_total", reason="UnknownPool", by="webhook") == 2


def pool_series(metrics: OperatorMetrics) -> set[tuple[str, str, str]]:
    """(metric, pool, resource or "") of every exported queue, capacity and in-use sample."""
    return {
        (sample.name, sample.labels["pool"], sample.labels.get("resource", ""))
        for family in metrics.registry.collect()
        if family.name in ("assay_queue_length", "assay_pool_capacity", "assay_pool_in_use")
        for sample in family.samples
    }


def test_a_deleted_pool_and_a_resource_gone_from_a_pool_stop_being_exported(metrics: OperatorMetrics) -> None:
    for pool in ("p", "q"):
        metrics.set_queue_length(pool, 1)
        metrics.set_pool_resources(pool, {"cpu": 8, "nvidia.com/gpu": 4}, {"nvidia.com/gpu": 1})
    metrics.set_pool_resources("p", {"cpu": 8}, {})  # its GPU nodes went away
    assert {s for s in pool_series(metrics) if s[1] == "p"} == {
        ("assay_queue_length", "p", ""),
        ("assay_pool_capacity", "p", "cpu"),
        ("assay_pool_in_use", "p", "cpu"),
    }
    metrics.forget_pool("p")
    metrics.forget_pool("never-seen")
    assert {s[1] for s in pool_series(metrics)} == {"q"}
    assert value(metrics, "assay_pool_in_use", pool="q", resource="nvidia.com/gpu") == 1


def budget_figures(spent: float) -> dict[str, float]:
    return {"spent": spent, "committed": 1.0, "remaining": 10.0 - spent}


def budget_series(metrics: OperatorMetrics) -> set[tuple[str, str, str, str]]:
    """(metric, pool, budget, currency) of every exported budget sample."""
    return {
        (sample.name, sample.labels["pool"], sample.labels["budget"], sample.labels["currency"])
        for family in metrics.registry.collect()
        if family.name.startswith("assay_budget_")
        for sample in family.samples
    }


def test_a_removed_budget_and_a_deleted_pool_stop_being_exported(metrics: OperatorMetrics) -> None:
    metrics.set_budgets("p", "EUR", {"team-a": budget_figures(2.0), "team-b": budget_figures(3.0)})
    metrics.set_budgets("q", "EUR", {"team-a": budget_figures(4.0)})
    assert value(metrics, "assay_budget_spent", pool="p", budget="team-b", currency="EUR") == 3.0

    metrics.set_budgets("p", "EUR", {"team-a": budget_figures(2.5)})  # team-b removed from the pool
    figures = ("assay_budget_spent", "assay_budget_committed", "assay_budget_remaining")
    assert budget_series(metrics) == {(f, pool, "team-a", "EUR") for f in figures for pool in ("p", "q")}
    assert value(metrics, "assay_budget_spent", pool="p", budget="team-a", currency="EUR") == 2.5

    metrics.set_budgets("p", "USD", {"team-a": budget_figures(0.0)})  # the pool's currency changed
    assert {s for s in budget_series(metrics) if s[1] == "p"} == {(f, "p", "team-a", "USD") for f in figures}

    metrics.set_budgets("p", "USD", {})  # every budget removed (or the pricing)
    metrics.forget_pool("q")
    metrics.forget_pool("never-seen")
    assert budget_series(metrics) == set()


def test_the_endpoint_serves_the_metrics_in_text_format() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start_metrics_server(port, address="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "# TYPE assay_evaluations gauge" in body
    assert "# TYPE assay_gpu_seconds_total counter" in body
