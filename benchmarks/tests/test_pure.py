"""Unit tests of the benchmark's pure parts: percentiles, summaries, audit counting, workloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import arms, audit, report, workloads
from benchmarks.stats import EvalTimes, percentile, ratio, summarize


def test_percentile_interpolates_and_handles_empty() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(101)], 99) == 99.0


def test_summarize_measures_from_first_create_to_last_finish() -> None:
    times = {
        "a": EvalTimes(
            created=100.0, job_created=100.2, last_pod_done=103.0, finished=103.1, outcome="Succeeded"
        ),
        "b": EvalTimes(
            created=100.5, job_created=100.6, last_pod_done=104.0, finished=104.5, outcome="Failed"
        ),
    }
    s = summarize(times)
    assert s["total_s"] == 4.5
    assert s["outcomes"] == {"Succeeded": 1, "Failed": 1}
    assert s["create_to_job"]["p50_ms"] == 150.0  # type: ignore[index]
    assert s["last_pod_to_status"]["max_ms"] == 500.0  # type: ignore[index]


def test_summarize_has_no_total_while_an_evaluation_is_unfinished() -> None:
    times = {"a": EvalTimes(created=1.0, finished=2.0, outcome="Succeeded"), "b": EvalTimes(created=1.0)}
    s = summarize(times)
    assert s["total_s"] is None
    assert s["outcomes"] == {"Succeeded": 1, "unfinished": 1}


def test_ratio() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, 0.0) is None


def _event(agent: str, verb: str, resource: str, stage: str, ts: str, subresource: str = "") -> str:
    ref = {"resource": resource, "apiGroup": "batch"} if resource else None
    if ref and subresource:
        ref["subresource"] = subresource
    event: dict[str, object] = {
        "userAgent": agent,
        "verb": verb,
        "stage": stage,
        "requestReceivedTimestamp": ts,
    }
    if ref:
        event["objectRef"] = ref
    else:
        event["requestURI"] = "/readyz?verbose"
    return json.dumps(event)


def test_count_requests_once_per_request_by_client_within_the_window() -> None:
    t = "2026-01-01T00:00:01.000000Z"
    lines = [
        _event("kopf/1.45 (x)", "create", "jobs", "ResponseComplete", t),
        _event("kopf/1.45 (x)", "patch", "jobs", "ResponseComplete", t, subresource="status"),
        _event("kopf/1.45 (x)", "watch", "jobs", "ResponseStarted", t),
        _event("kopf/1.45 (x)", "watch", "jobs", "ResponseComplete", t),  # the same watch ending: not counted
        _event("kube-controller-manager/v1.37.2 (linux)", "update", "jobs", "ResponseComplete", t),
        _event("assay-bench/0.1", "get", "", "ResponseComplete", t),
        _event("kopf/1.45 (x)", "create", "jobs", "ResponseComplete", "2026-01-01T00:00:09Z"),  # outside
    ]
    start = audit._timestamp("2026-01-01T00:00:00Z")
    counts, agents = audit.count_requests(lines, start, start + 5)
    assert counts[("controller", "create", "jobs.batch")] == 1
    assert counts[("controller", "patch", "jobs.batch/status")] == 1
    assert counts[("controller", "watch", "jobs.batch")] == 1
    assert counts[("controller-manager", "update", "jobs.batch")] == 1
    assert counts[("bench", "get", "/readyz")] == 1
    assert agents == {"kopf/1.45"}
    per = audit.per_evaluation(counts, 2)
    assert per["writes_by_client_per_eval"]["controller"] == 1.0
    assert per["total_per_eval"] == 2.5


def test_client_of_tells_components_from_the_controller_under_test() -> None:
    assert audit.client_of("kwok-controller/v0.8.0 (linux/amd64)") == "kwok"
    assert audit.client_of("kubectl-dispatcher/v1.0") == "kubectl"
    assert audit.client_of("jobset/v0.0.0 (linux/amd64)") == audit.CONTROLLER


def test_workloads_have_the_same_shape_in_every_arm() -> None:
    predict = workloads.raw_job("e-00001", "predict", 8)
    assert predict["spec"]["completions"] == predict["spec"]["parallelism"] == 8
    pod = predict["spec"]["template"]["spec"]
    js = workloads.jobset("e-00001", 8)
    predict_js, evaluate_js = js["spec"]["replicatedJobs"]
    assert predict_js["template"]["spec"]["template"]["spec"] == pod
    assert evaluate_js["dependsOn"] == [{"name": "predict", "status": "Complete"}]
    assert evaluate_js["template"]["spec"]["completions"] == 1
    ev = workloads.evaluation("e-00001", 8)
    pool = workloads.resource_pool()
    assert ev["spec"]["tasks"] == 8
    assert ev["spec"]["resources"] == pod["containers"][0]["resources"]["requests"]
    assert pool["spec"]["nodeSelector"] == pod["nodeSelector"]
    assert pool["spec"]["tolerations"] == pod["tolerations"]


def test_every_task_pod_fits_on_the_benchmark_nodes() -> None:
    listed = workloads.nodes(3, 8)
    assert listed["kind"] == "List"
    assert [n["metadata"]["name"] for n in listed["items"]] == ["bench-gpu-0", "bench-gpu-1", "bench-gpu-2"]
    pod = workloads.raw_job("e-00000", "predict", 1)["spec"]["template"]["spec"]
    tolerated = {(t["key"], t["effect"]) for t in pod["tolerations"]}
    for node in listed["items"]:
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert node["metadata"]["labels"]["type"] == "kwok"  # what hack/kwok-cluster.sh waits Ready for
        assert pod["nodeSelector"].items() <= node["metadata"]["labels"].items()
        assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} <= tolerated
        gpus = int(node["status"]["allocatable"]["nvidia.com/gpu"])
        assert gpus == 8
        assert int(pod["containers"][0]["resources"]["requests"]["nvidia.com/gpu"]) <= gpus


def test_the_pods_stage_ends_them_after_the_benchmarks_delay() -> None:
    template = (Path(__file__).parents[1] / "kwok" / "pod-auto-complete-bench.yaml").read_text()
    stage = yaml.safe_load(workloads.pod_auto_complete_stage(template, 250))
    assert stage["kind"] == "Stage"
    assert stage["spec"]["delay"]["durationMilliseconds"] == 250
    with pytest.raises(ValueError, match="durationMilliseconds: 1000"):
        workloads.pod_auto_complete_stage("kind: Stage\n", 250)


def test_top_frames_ranks_self_and_inclusive_time() -> None:
    from benchmarks.profile import top_frames

    outer = "main (main.py:1);Handle._run (asyncio/events.py:80)"
    lines = [
        f"{outer};handle (kopf/_core/x.py:10);loads (json/decoder.py:5) 3",
        f"{outer};handle (kopf/_core/x.py:12);patch (assay/k.py:7) 1",
        "garbage",
    ]
    top = top_frames(lines)
    assert top["samples"] == 4
    assert top["self"][0] == {"function": "loads (json/decoder.py)", "percent": 75.0}
    assert top["inclusive"][0] == {"function": "handle (kopf/_core/x.py)", "percent": 100.0}
    assert all("asyncio" not in f["function"] and "main.py" not in f["function"] for f in top["inclusive"])


def test_top_frames_names_the_callers_of_the_hottest_functions() -> None:
    from benchmarks.profile import top_frames

    top = top_frames(["main (main.py:1);index (kopf/idx.py:3);deepcopy (copy.py:9);deepcopy (copy.py:9) 2"])
    assert top["callers_of_top_self"]["deepcopy (copy.py)"] == [
        {"via": "index (kopf/idx.py)", "percent": 100.0}
    ]


def test_a_baseline_adds_only_the_arms_not_run_now_and_is_named_in_the_report() -> None:
    tier = {"name": "M", "evaluations": 2, "tasks": 1, "nodes": 1, "live": 0, "timeout_s": 1}
    earlier: dict[str, Any] = {
        "tier": tier,
        "pod_ms": 1000,
        "started_at": "2026-11-26T20:04:00",
        "machine": {"loadavg_at_start": ["1", "2", "3"]},
        "arms": {"A0": {"arm": "A0", "title": "raw"}, "A2": {"arm": "A2", "title": "old assay"}},
    }
    result: dict[str, Any] = {"tier": tier, "pod_ms": 1000, "arms": {"A2": {"arm": "A2", "title": "new"}}}
    report.add_baseline(result, earlier, "earlier.json")
    assert list(result["arms"]) == ["A0", "A2"]
    assert result["arms"]["A2"]["title"] == "new"  # this run's arm wins
    assert result["baseline"]["arms"] == ["A0"]
    with pytest.raises(ValueError):
        report.add_baseline(result, {**earlier, "pod_ms": 500}, "other.json")


def test_reconcile_counts_come_from_the_operators_histogram() -> None:
    text = "\n".join(
        [
            "# HELP assay_reconcile_duration_seconds Time spent in one reconcile handler call.",
            "# TYPE assay_reconcile_duration_seconds histogram",
            'assay_reconcile_duration_seconds_bucket{handler="evaluation",le="+Inf"} 42.0',
            'assay_reconcile_duration_seconds_count{handler="evaluation"} 42.0',
            'assay_reconcile_duration_seconds_sum{handler="evaluation"} 1.5',
            'assay_reconcile_duration_seconds_count{handler="pool"} 7.0',
            "# TYPE other_total counter",
            "other_total 3.0",
        ]
    )
    assert arms.reconcile_counts(text + "\n") == {"reconciles_evaluation": 42.0, "reconciles_pool": 7.0}


def test_lost_audit_events_come_from_the_apiservers_error_counter() -> None:
    text = (
        "# HELP apiserver_audit_error_total Counter of audit events that failed to be audited.\n"
        "# TYPE apiserver_audit_error_total counter\n"
        'apiserver_audit_error_total{plugin="buffered"} 1234\n'
    )
    assert audit.events_lost(text) == 1234
    assert audit.events_lost("") == 0
