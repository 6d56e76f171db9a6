"""Unit tests of the benchmark's pure parts: percentiles, summaries, audit counting, workloads."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.api import Evaluation, ResourcePool
from assay.contract import Step
from assay.controller.reconciler import render_options
from assay.controller.settings import OperatorSettings
from assay.render import job_for
from benchmarks import __main__ as bench_main
from benchmarks import arms, audit, report, run, workloads
from benchmarks.stats import EvalTimes, percentile, ratio, spread, summarize


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


def test_spread_is_median_min_max_of_the_rounds() -> None:
    assert spread([]) is None
    assert spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}


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


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """The paths (``metadata.labels.x``, ``spec.template...containers[0]``) where ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for key in sorted(a.keys() | b.keys())
            for d in _differences(a.get(key), b.get(key), f"{path}.{key}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path.lstrip(".")]


def _assay_renders(step: Step, tasks: int, namespace: str) -> dict[str, Any]:
    """The Job the A2 operator renders for the benchmark's Evaluation (as the apiserver stores it, uid set)
    in the benchmark pool, with the settings the A2 arm starts it with."""
    body = workloads.evaluation("e-00007", tasks, namespace=namespace)
    body["metadata"]["uid"] = workloads.evaluation_uid("e-00007", namespace)
    options = render_options(OperatorSettings.from_env(workloads.OPERATOR_ENV))
    pool = ResourcePool.model_validate(workloads.resource_pool())
    return job_for(Evaluation.model_validate(body), pool, step, options)


@pytest.mark.parametrize("step", [Step.PREDICT, Step.EVALUATE])
@pytest.mark.parametrize("namespace", [workloads.NAMESPACE, "bench-rate-2"])
def test_a0_creates_the_jobs_assay_renders_but_the_owner_reference(step: Step, namespace: str) -> None:
    a0 = workloads.rendered_job("e-00007", step, 8, namespace)
    assay = _assay_renders(step, 8, namespace)
    # Field by field: the same pods (environment contract, securityContext, podFailurePolicy, deadline...).
    # The retention TTL too: the default (an hour) is rendered into the Jobs when they are created.
    assert _differences(a0, assay) == ["metadata.ownerReferences"]
    assert "ownerReferences" not in a0["metadata"]
    assert a0["spec"]["ttlSecondsAfterFinished"] == OperatorSettings().job_retention_seconds
    assert a0["metadata"]["labels"][workloads.STEP_LABEL] == step.value


def test_the_uid_in_a0s_environment_contract_is_fixed_per_evaluation_and_has_a_uids_form() -> None:
    uid = workloads.evaluation_uid("e-00001")
    assert str(uuid.UUID(uid)) == uid
    assert uid == workloads.evaluation_uid("e-00001") != workloads.evaluation_uid("e-00002")
    assert uid != workloads.evaluation_uid("e-00001", "bench-rate-2")


def test_jobset_runs_the_same_jobs_as_a0() -> None:
    js = workloads.jobset("e-00001", 8, namespace="bench-rate-1")
    predict, evaluate = js["spec"]["replicatedJobs"]
    assert (
        predict["template"]["spec"]
        == workloads.rendered_job("e-00001", Step.PREDICT, 8, "bench-rate-1")["spec"]
    )
    assert (
        evaluate["template"]["spec"]
        == workloads.rendered_job("e-00001", Step.EVALUATE, 8, "bench-rate-1")["spec"]
    )
    assert evaluate["dependsOn"] == [{"name": "predict", "status": "Complete"}]
    assert js["metadata"]["namespace"] == "bench-rate-1"
    assert workloads.jobset("e-00001", 8, suspend=True)["spec"]["suspend"] is True


def test_the_pool_places_pods_on_the_fake_gpu_nodes() -> None:
    pod = workloads.rendered_job("e-00001", Step.PREDICT, 8)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == workloads.NODE_SELECTOR
    assert pod["tolerations"] == workloads.TOLERATIONS
    assert pod["containers"][0]["resources"]["requests"] == workloads.TASK_RESOURCES
    assert pod["containers"][0]["image"] == workloads.IMAGE


def _run(arm: str, total: float, cpu_cp: float, cpu_ctrl: float, **more: Any) -> dict[str, Any]:
    return {
        "arm": arm,
        "evaluations": 10,
        "finished": 10,
        "outcomes": {"Succeeded": 10},
        "total_s": total,
        "control_plane_cpu_s": {"kube-apiserver": cpu_cp},
        "controller": {"cpu_s": cpu_ctrl, "peak_rss_mib": 100.0 + total},
        "all_in_cpu_per_eval_s": (cpu_cp + cpu_ctrl) / 10,
        "create_to_job": {"p50_ms": 10.0, "p99_ms": total},
        "api": {"raw": [{"client": "controller", "verb": "patch", "resource": "evaluations.assay.dev/status",
                         "count": 20}], "total_per_eval": 5.0},
        **more,
    }  # fmt: skip


def test_an_arm_over_its_rounds_reports_medians_and_ranges_of_the_rounds_that_ran() -> None:
    runs = [
        _run("A2", 30.0, 10.0, 5.0, steady={"2": {"create_to_job": {"p99_ms": 200.0}}}),
        {"arm": "A2", "title": "t", "error": "Traceback: boom"},
        _run("A2", 10.0, 8.0, 2.0, steady={"2": {"create_to_job": {"p99_ms": 100.0}}}),
        _run("A2", 20.0, 9.0, 3.0),
    ]
    arm = report.aggregate("A2", "Assay", runs)
    assert arm["runs"] == runs
    figures = arm["figures"]
    assert figures["total_s"] == {"median": 20.0, "min": 10.0, "max": 30.0, "n": 3}
    assert figures["all_in_cpu_per_eval_s"] == {"median": 1.2, "min": 1.0, "max": 1.5, "n": 3}
    assert figures["writes_per_eval"]["median"] == 2.0
    assert figures["steady_2_create_to_job_p99_ms"] == {"median": 150.0, "min": 100.0, "max": 200.0, "n": 2}
    assert report.median_run(arm) is runs[3]


def test_ratios_and_goals_come_from_the_medians() -> None:
    arms_ = {
        "A0": report.aggregate("A0", "raw", [_run("A0", 10.0, 8.0, 0.0), _run("A0", 12.0, 10.0, 0.0)]),
        "A1": report.aggregate("A1", "jobset", [_run("A1", 20.0, 9.0, 1.0), _run("A1", 22.0, 9.0, 1.0)]),
        "A2": report.aggregate("A2", "assay", [_run("A2", 19.0, 10.0, 2.0), _run("A2", 25.0, 10.0, 0.0)]),
    }
    r = report.ratios(arms_)
    assert r["A2/A0"]["total_s"] == 2.0  # 22 / 11
    assert r["A2/A1"]["all_in_cpu_per_eval_s"] == 1.1  # 1.1 / 1.0
    tier = {"rounds": 2, "rates": (2.0,), "evaluations": 10}
    live = {"A2": {"settled": 5000, "rss_mib": 140.0, "growth_kib_per_evaluation": 12.5}}
    goals = {g["goal"]: g for g in report.goals(arms_, live, tier)}
    assert goals["all-in CPU per evaluation <= 1.0 x A1"]["met"] is False
    assert goals["all-in CPU per evaluation <= 1.3 x A0"] == {
        "goal": "all-in CPU per evaluation <= 1.3 x A0",
        "measured": 1.22,
        "met": True,
    }  # 1.1 / 0.9
    assert goals["total time, median of 2, <= 1.0 x A1"]["measured"] == 1.05  # 22 / 21
    assert goals["total time, median of 2, <= 1.0 x A1"]["met"] is False
    assert goals["growth per live Evaluation <= 10 KiB"]["met"] is False
    assert goals["steady 2/s: create -> Job p99 <= 300 ms"]["met"] is None  # not measured
    peak = next(g for g in goals.values() if g["goal"].startswith("peak RSS"))
    assert peak["measured"] == 125.0  # the highest round, not the median


def test_the_report_shows_median_and_range_the_goals_and_every_round() -> None:
    runs = [_run("A2", 10.0, 8.0, 2.0), {"arm": "A2", "title": "t", "error": "Traceback\nRuntimeError: down"}]
    runs.append(_run("A2", 14.0, 8.0, 2.0))
    result: dict[str, Any] = {
        "date": "2026-12-07",
        "tier": {"name": "smoke", "evaluations": 10, "tasks": 4, "nodes": 4, "rates": (2.0,), "steady_s": 10},
        "rounds": 3,
        "pod_ms": 1000,
        "arms": {"A2": report.aggregate("A2", "Assay", runs)},
        "live": {"A2": {"settled": 200, "live_evaluations": 200, "rss_mib": 82.0,
                        "growth_kib_per_evaluation": 10.24,
                        "rss_mib_at": {"0": 80.0, "100": 81.0, "200": 82.0}}},
        "machine": {"nproc": 2, "cpu_model": "x", "mem_total_gib": 8, "kernel": "k", "python": "3",
                    "loadavg_at_start": ["1", "1", "1"]},
        "versions": {},
    }  # fmt: skip
    result["goals"] = report.goals(result["arms"], result["live"], result["tier"])
    text = report.markdown(result)
    assert "| total time, first create -> last finished (s) | 12 (10-14) |" in text
    assert (
        report._spread_cell({"median": 1357.35, "min": 0.0714, "max": 14.705, "n": 3})
        == "1,357 (0.0714-14.7)"
    )
    assert "| evaluations finished, all rounds | 20/20 (Succeeded 20); 1 round(s) failed |" in text
    assert "| 2 | A2 | error: RuntimeError: down | | |" in text
    assert "| A2 | 80.0 / 81.0 / 82.0 | 10.24 |" in text
    assert "| RSS with 200 live Evaluations, fresh process, <= 150 MiB (5,000 in S/M) | 82 | yes |" in text
    assert "| growth per live Evaluation <= 10 KiB | 10.2 | no |" in text


def test_an_interrupted_run_leaves_its_rounds_so_far_until_the_report_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result: dict[str, Any] = {"date": "2026-12-07", "tier": {"name": "M"}}
    runs = {"A0": [_run("A0", 10.0, 8.0, 0.0), _run("A0", 12.0, 8.0, 0.0)], "A2": []}
    partial = report.write_partial(result, runs, {"A0": "raw", "A2": "assay"}, tmp_path, "x")
    assert partial.name == "2026-12-07-M-x.partial.json"
    written = json.loads(partial.read_text())
    assert list(written["arms"]) == ["A0"]  # an arm with no run yet has no figures
    assert written["arms"]["A0"]["figures"]["total_s"]["median"] == 11.0
    assert "arms" not in result  # the result being built is left alone

    monkeypatch.setattr(report, "markdown", lambda _result: "report")  # the file handling is under test
    report.write(dict(result, arms=written["arms"]), tmp_path, "x")
    assert not partial.exists()
    assert (tmp_path / "2026-12-07-M-x.md").read_text() == "report"


def test_steady_namespaces_are_valid_names() -> None:
    assert run.steady_namespace(2.0) == "bench-rate-2"
    assert run.steady_namespace(0.5) == "bench-rate-0-5"


def test_options_override_the_tiers_rounds_and_rates() -> None:
    smoke = bench_main.tier_of(bench_main.parse_args(["--tier", "smoke"]))
    assert smoke.rounds == 1
    args = bench_main.parse_args(["--tier", "smoke", "--rounds", "2", "--rate", "2,5", "--steady-s", "60"])
    tier = bench_main.tier_of(args)
    assert (tier.rounds, tier.rates, tier.steady_s) == (2, (2.0, 5.0), 60.0)
    assert bench_main.tier_of(bench_main.parse_args(["--rate", ""])).rates == ()
    assert run.TIERS["S"].rounds == run.TIERS["M"].rounds == 3
    with pytest.raises(SystemExit):
        bench_main.tier_of(bench_main.parse_args(["--rounds", "0"]))


def test_every_task_pod_fits_on_the_benchmark_nodes() -> None:
    listed = workloads.nodes(3, 8)
    assert listed["kind"] == "List"
    assert [n["metadata"]["name"] for n in listed["items"]] == ["bench-gpu-0", "bench-gpu-1", "bench-gpu-2"]
    pod = workloads.rendered_job("e-00000", Step.PREDICT, 8)["spec"]["template"]["spec"]
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


def test_the_cli_figures_give_wall_and_cpu_time_and_kubectls_wall_time_beside_them() -> None:
    run = _run(
        "A2", 10.0, 8.0, 2.0,
        cli_wall_s={"assay list -A": 0.9, "assay get": 0.4, "kubectl get evaluations -A": 0.3},
        cli_cpu_s={"assay list -A": 0.33, "assay get": 0.29, "kubectl get evaluations -A": 0.05},
    )  # fmt: skip
    figures = report.run_figures(run)
    assert figures["cli_assay_list_-A_s"] == 0.9
    assert figures["cli_assay_list_-A_cpu_s"] == 0.33
    assert figures["cli_kubectl_get_evaluations_-A_s"] == 0.3
    result: dict[str, Any] = {
        "date": "2026-12-08",
        "tier": {"name": "smoke", "evaluations": 10, "tasks": 4, "nodes": 4, "rates": (), "steady_s": 10},
        "rounds": 1,
        "pod_ms": 1000,
        "arms": {"A2": report.aggregate("A2", "Assay", [run])},
        "live": {},
        "machine": {"nproc": 2, "cpu_model": "x", "mem_total_gib": 8, "kernel": "k", "python": "3",
                    "loadavg_at_start": ["1", "1", "1"]},
        "versions": {},
    }  # fmt: skip
    result["goals"] = report.goals(result["arms"], result["live"], result["tier"])
    text = report.markdown(result)
    assert "|   its CPU time: `assay list -A` (s) | 0.33 |" in text
    assert "|   `kubectl get evaluations -A` wall time then (s) | 0.3 |" in text
