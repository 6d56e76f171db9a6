"""What the CLI prints, rendered from model fixtures (assay.cli.views, assay.facts); no cluster."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from cli_samples import NOW, evaluation, pod, pool, running
from rich.console import Console, RenderableType

from assay import facts
from assay.api.pool import Budget, BudgetStatus
from assay.attempts import attempts_from_pods
from assay.cli import views
from assay.cli.options import show
from assay.compare import compare


def render(renderable: RenderableType) -> str:
    console = Console(width=250, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def lines_of(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


# --- facts ----------------------------------------------------------------------------------------------


def test_sys_facts_of_a_finished_evaluation():
    got = facts.sys_facts(evaluation(), NOW)
    assert got["sys/id"] == "uid-cnn-v3"
    assert (got["sys/model"], got["sys/model_version"]) == ("mnist-cnn", "v3")
    assert (got["sys/dataset"], got["sys/dataset_version"]) == ("mnist-test", "v1")
    assert (got["sys/runtime"], got["sys/runtime_version"]) == ("pytorch", "2.4")
    assert got["sys/pool"] == "a100"
    assert got["sys/phase"] == "Succeeded"
    assert got["sys/created"] == "2026-11-26T11:00:00Z"
    assert got["sys/finished"] == "2026-11-26T11:03:30Z"
    assert got["sys/duration"] == 150.0
    assert got["sys/tasks"] == "3/3"
    assert got["sys/records"] == 10000
    assert got["sys/cost"] == 1.27  # a number, so compare shows a delta; get adds the currency
    assert got["sys/debug"] is None


def test_a_running_evaluation_counts_its_duration_until_now_and_shows_debug_access():
    live = running("live")
    assert facts.duration(live, NOW) == timedelta(minutes=59)
    assert facts.sys_facts(live, NOW)["sys/debug"] == "svc/live-debug:8000"
    hint = facts.debug_hint(live)
    assert hint == "kubectl port-forward -n team-a svc/live-debug 8000  (password: Secret live-debug)"


def test_headline_is_the_first_summary_metric_like_kubectls_column():
    assert facts.headline_metric(evaluation()) == ("accuracy", 0.9912)
    assert facts.headline_metric(running("x")) is None
    assert views.headline_text(evaluation()) == "accuracy=0.9912"


def test_subject_for_compare_carries_metrics_and_running_mark():
    subject = facts.subject(running("live"), NOW)
    assert subject.running and subject.phase == "Running"
    assert "sys/finished" not in subject.facts  # absent facts are left out, so they show as empty cells
    done = facts.subject(evaluation(), NOW)
    assert done.facts["accuracy"] == 0.9912 and not done.running


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (60, "1m"), (192, "3m12s"), (7500, "2h5m"), (90000, "1d1h"), (-3, "0s")]
)
def test_durations_read_like_kubectl(seconds, text):
    assert facts.format_duration(seconds) == text


# --- list -----------------------------------------------------------------------------------------------


def test_list_table_shows_pool_phase_tasks_result_cost_age():
    text = render(views.evaluations_table([evaluation("cnn-v3"), running("live")], now=NOW))
    rows = lines_of(text)
    assert rows[0] == ["NAME", "POOL", "PHASE", "TASKS", "RESULT", "COST", "AGE"]
    assert rows[1] == [
        "cnn-v3",
        "a100",
        "Succeeded",
        "3/3",
        "accuracy=0.9912",
        "1.27",
        "/",
        "40.00",
        "USD",
        "1h",
    ]
    assert rows[2][:4] == ["live", "a100", "Running", "1/3"]


def test_list_wide_and_all_namespaces_add_columns():
    text = render(views.evaluations_table([evaluation()], wide=True, all_namespaces=True, now=NOW))
    header, row = lines_of(text)
    assert header[0] == "NAMESPACE" and header[-4:] == ["MODEL", "DATASET", "DURATION", "EXPIRES"]
    assert row[0] == "team-a"
    assert "mnist-cnn:v3" in row and "mnist-test:v1" in row and "2m30s" in row


def test_json_yaml_and_name_outputs():
    items = [evaluation("a"), evaluation("b")]
    data = json.loads(views.dump(views.as_api_data(items, single=False), views.ListFormat.JSON))
    assert data["kind"] == "List" and [i["metadata"]["name"] for i in data["items"]] == ["a", "b"]
    single = yaml.safe_load(views.dump(views.as_api_data(items[:1], single=True), views.ListFormat.YAML))
    assert single["kind"] == "Evaluation" and single["status"]["results"]["summary"]["accuracy"] == 0.9912
    assert views.object_name(items[0]) == "evaluation.assay.dev/a"


# --- get ------------------------------------------------------------------------------------------------


def test_get_shows_spec_facts_metrics_results_and_conditions():
    text = render(views.evaluation_details(evaluation(), now=NOW))
    for expected in (
        "Phase",
        "Succeeded",
        "mnist-cnn v3  (pvc://models/mnist-cnn)",
        "mnist_eval:MNISTEvaluator",
        "sys/id",
        "uid-cnn-v3",
        "sys/duration",
        "macro avg/f1",
        "0.991",
        "pvc://eval-results/team-a/cnn-v3/",
        "AllTasksSucceeded",
        "3 of 3 tasks succeeded",
        "1.27 / 40.00 USD",
        "150s (2m30s)",
    ):
        assert expected in text, expected
    assert "Debug" not in text


def test_get_of_a_debug_evaluation_shows_how_to_connect_but_never_a_password():
    text = render(views.evaluation_details(running("live"), now=NOW))
    assert "kubectl port-forward -n team-a svc/live-debug 8000" in text
    assert "Secret live-debug" in text
    assert "(no results yet)" in text
    assert "password:" in text and "password: Secret" in text


# --- tasks ----------------------------------------------------------------------------------------------


def test_tasks_show_every_attempt_while_pods_exist_and_status_entries_otherwise():
    pods = [
        pod("p-1-first", "predict", 1, "2026-11-26T11:00:00Z", phase="Failed", exit_code=12, reason="Error"),
        pod("p-1-second", "predict", 1, "2026-11-26T11:01:00Z"),
    ]
    attempts = attempts_from_pods(pods, {("predict", 1): 2})
    rows = views.task_rows(evaluation().status.tasks, attempts, now=NOW)
    text = render(views.tasks_table(rows, wide=True))
    table = lines_of(text)
    assert table[0] == [
        "STEP",
        "INDEX",
        "ATTEMPT",
        "PHASE",
        "NODE",
        "START",
        "DURATION",
        "EXIT",
        "REASON",
        "POD",
    ]
    assert table[1] == ["predict", "0", "1", "Succeeded", "cnn-v3-predict-0-a"]  # pod gone: status entry
    assert table[2][:4] == ["predict", "1", "1", "Failed"]
    assert table[2][-3:] == ["12", "HandlerFailed", "p-1-first"]  # as status says, not the pod's "Error"
    assert table[3][:4] == ["predict", "1", "2", "Succeeded"]
    assert table[4][:2] == ["evaluate", "0"]


# --- pools ----------------------------------------------------------------------------------------------


def test_pools_show_capacity_use_quota_queue_and_price():
    rows = lines_of(render(views.pools_table([pool()])))
    assert rows[0] == ["NAME", "NODES", "CAPACITY", "IN", "USE", "QUOTA", "RUNNING", "QUEUED", "PRICE"]
    assert rows[1] == [
        "a100",
        "3",
        "nvidia.com/gpu=24",
        "nvidia.com/gpu=4",
        "nvidia.com/gpu=16",
        "2",
        "3",
        "nvidia.com/gpu=2.50",
        "USD/h",
    ]


# --- compare --------------------------------------------------------------------------------------------


def test_compare_table_puts_the_baseline_first_and_marks_running_and_trends():
    better = evaluation("cnn-v4", summary={"accuracy": 0.995, "loss": 0.02})
    comparison = compare(
        [facts.subject(e, NOW) for e in (evaluation(), better, running("mlp"))],
        columns=["accuracy", "loss", "macro avg/f1"],
    )
    rows = lines_of(render(views.comparison_table(comparison)))
    assert rows[0] == ["KEY", "cnn-v3", "(baseline)", "cnn-v4", "mlp", "[Running]"]
    assert rows[1] == ["accuracy", "0.9912", "0.995", "▲+0.0038"]
    assert rows[2] == ["loss", "0.031", "0.02", "▼-0.011"]
    assert rows[3] == ["macro", "avg/f1", "0.991"]


def test_compare_text_formats():
    comparison = compare(
        [facts.subject(e, NOW) for e in (evaluation("a"), evaluation("b"))], columns=["loss"]
    )
    assert views.comparison_text(comparison, views.CompareFormat.CSV).splitlines()[0] == "key,a,b,b delta"
    assert views.comparison_text(comparison, views.CompareFormat.MARKDOWN).startswith(
        "| key | a (baseline) | b |"
    )
    assert json.loads(views.comparison_text(comparison, views.CompareFormat.JSON))["baseline"] == "a"
    with pytest.raises(ValueError):
        views.comparison_text(comparison, views.CompareFormat.TABLE)


def test_compare_json_of_the_cli_has_the_exact_decimal_deltas():
    better = evaluation("cnn-v4", summary={"accuracy": 0.995, "loss": 0.02})
    comparison = compare(
        [facts.subject(e, NOW) for e in (evaluation(), better)], columns=["accuracy", "loss"]
    )
    data = json.loads(views.comparison_text(comparison, views.CompareFormat.JSON))
    assert [row["values"]["cnn-v4"]["delta"] for row in data["rows"]] == [0.0038, -0.011]


def test_a_table_wider_than_the_terminal_is_not_cut():
    comparison = compare(
        [facts.subject(e, NOW) for e in (evaluation("a-long-name"), evaluation("b-long-name"))]
    )
    narrow = Console(width=40, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    show(narrow, views.comparison_table(comparison))
    text = narrow.export_text()
    assert "…" not in text
    assert "uid-a-long-name" in text and "b-long-name (baseline)" not in text
    assert max(len(line) for line in text.splitlines()) > 40


def test_budgets_show_state_money_waiting_and_window_and_wide_pools_name_them():
    budgeted = pool().model_copy(deep=True)
    budgeted.spec.budgets = [
        Budget.model_validate({"name": "team", "spendLimit": "100", "interval": "Weekly"}),
        Budget.model_validate({"name": "new", "spendLimit": "5"}),
    ]
    budgeted.status.budgets = [
        BudgetStatus.model_validate(
            {
                "name": "team",
                "since": "2026-03-01T00:00:00Z",
                "windowStart": "2026-03-09T00:00:00Z",
                "windowEnd": "2026-03-16T00:00:00Z",
                "currency": "EUR",
                "spendLimit": "100.00",
                "spent": "85.00",
                "committed": "10.00",
                "remaining": "15.00",
                "state": "Warning",
                "warnedAt": 80,
                "waiting": 2,
            }
        )
    ]
    rows = [" ".join(row) for row in lines_of(render(views.budgets_table([budgeted])))]
    assert rows[0] == "POOL BUDGET STATE SPENT COMMITTED REMAINING LIMIT WAITING WINDOW (UTC)"
    assert rows[1] == (
        "a100 team Warning 85.00 EUR 10.00 EUR 15.00 EUR 100.00 EUR 2 2026-03-09 00:00 - 2026-03-16 00:00"
    )
    assert rows[2] == "a100 new 5"  # not counted by the operator yet
    assert views.budgets_text(budgeted) == "team Warning 85.00/100.00 EUR"
    assert "team Warning 85.00/100.00 EUR" in render(views.pools_table([budgeted], wide=True))
