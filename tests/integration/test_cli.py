"""The assay CLI against the real cluster: every command and output format on evaluations whose Jobs ran on
KWOK nodes (one task retried), plus permission errors and the kubectl plugin entry point."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_scenarios import NO_LOGS, World, manifest, wait_for_phase
from kubernetes import client
from typer.testing import CliRunner, Result

from assay import facts
from assay.api import Phase
from assay.cli import commands
from assay.cli.main import app
from assay.client import Client
from assay.errors import AlreadyExists, Forbidden, Invalid, NotFound
from support import kubectl_binary, wait_until

runner = CliRunner()


@pytest.fixture(scope="module")
def sdk(kube: Path, world: World) -> Iterator[Client]:
    """The SDK on the same namespace: what the CLI should show is read through it."""
    with Client(kube, namespace=world.namespace) as made:
        yield made


@pytest.fixture(scope="module")
def assay(kube: Path, world: World):
    """``assay("list", "-o", "json")``: the CLI in this process, on the test cluster and namespace."""

    def invoke(*args: str, namespaced: bool = True) -> Result:
        extra = ["--kubeconfig", str(kube)] + (["-n", world.namespace] if namespaced else [])
        return runner.invoke(app, [*args, *extra])

    return invoke


def table(output: str) -> list[list[str]]:
    """Rows of a kubectl-style table, split on runs of two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- list -----------------------------------------------------------------------------------------------


def test_list_is_newest_first_with_pool_phase_tasks_result_cost_age(assay, sdk: Client, world: World):
    rows = table(ok(assay("list")))
    assert rows[0] == ["NAME", "POOL", "PHASE", "TASKS", "RESULT", "COST", "AGE"]
    assert [r[0] for r in rows[1:]] == ["mlp-v1", "cnn-v4", "cnn-v3"]
    assert rows[1][1:4] == [world.pool, "Running", "1/3"]
    assert rows[2][1:6] == [
        world.pool,
        "Succeeded",
        "3/3",
        "accuracy=0.97",
        facts.cost_text(sdk.get("cnn-v4")),
    ]
    assert rows[3][1:6] == [
        world.pool,
        "Succeeded",
        "3/3",
        "accuracy=0.95",
        facts.cost_text(sdk.get("cnn-v3")),
    ]
    assert rows[2][5].endswith(" USD")
    assert re.fullmatch(r"\d+s", rows[1][-1])  # AGE


def test_list_wide_adds_model_dataset_duration(assay):
    rows = table(ok(assay("list", "-o", "wide")))
    assert rows[0][-4:] == ["MODEL", "DATASET", "DURATION", "EXPIRES"]
    cnn_v4 = next(r for r in rows if r[0] == "cnn-v4")
    assert cnn_v4[-3:-1] == ["cnn:v4", "mnist-test:v1"] or cnn_v4[-4:-2] == ["cnn:v4", "mnist-test:v1"]
    mlp_v1 = next(r for r in rows if r[0] == "mlp-v1")
    assert mlp_v1[-1].endswith("Z")  # still running: its auto-release time


def test_list_json_yaml_and_name(assay):
    data = json.loads(ok(assay("list", "-o", "json")))
    assert data["kind"] == "List"
    assert [i["metadata"]["name"] for i in data["items"]] == ["mlp-v1", "cnn-v4", "cnn-v3"]
    assert data["items"][1]["status"]["results"]["summary"]["recall"] == 0.9
    assert yaml.safe_load(ok(assay("list", "-o", "yaml"))) == data
    assert ok(assay("list", "-o", "name")).splitlines() == [
        "evaluation.assay.dev/mlp-v1",
        "evaluation.assay.dev/cnn-v4",
        "evaluation.assay.dev/cnn-v3",
    ]


def test_list_filters_by_selector_pool_and_phase(assay, world: World):
    assert ok(assay("list", "-l", "team=vision", "-o", "name")).split() == [
        "evaluation.assay.dev/mlp-v1",
        "evaluation.assay.dev/cnn-v4",
    ]
    assert ok(assay("list", "--phase", "running", "-o", "name")).split() == ["evaluation.assay.dev/mlp-v1"]
    assert len(ok(assay("list", "--pool", world.pool, "-o", "name")).split()) == 3
    empty = assay("list", "--pool", "no-such-pool")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "No evaluations found" in empty.stderr


def test_list_all_namespaces_shows_the_namespace_column(assay, world: World):
    rows = table(ok(assay("list", "-A")))
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [world.namespace, "cnn-v4"] in [r[:2] for r in rows]


# --- get ------------------------------------------------------------------------------------------------


def test_get_shows_facts_metrics_results_and_conditions(assay, sdk: Client, world: World):
    text = ok(assay("get", "cnn-v4"))
    facts = {r[0]: r[1] for r in table(text) if len(r) == 2}
    assert facts["sys/id"] == world.uids["cnn-v4"]
    assert facts["sys/model"] == "cnn" and facts["sys/model_version"] == "v4"
    assert facts["sys/dataset"] == "mnist-test" and facts["sys/dataset_version"] == "v1"
    assert facts["sys/runtime"] == "pytorch" and facts["sys/runtime_version"] == "2.4"
    assert facts["sys/pool"] == world.pool
    assert facts["sys/phase"] == "Succeeded"
    assert re.fullmatch(r"\d+s \(\d+[smh]\S*\)", facts["sys/duration"])
    assert facts["sys/finished"].endswith("Z") and facts["sys/created"].endswith("Z")
    assert facts["sys/tasks"] == "3/3" and facts["sys/records"] == "10000"
    assert facts["recall"] == "0.9" and facts["macro avg/f1"] == "0.94"
    assert facts["records"] == "10000"
    status = sdk.get("cnn-v4").status
    succeeded = next(c for c in status.conditions if c.type == "Succeeded")
    assert succeeded.reason in text and succeeded.message in text


def test_get_of_a_debug_evaluation_shows_how_to_connect_not_the_password(
    assay, sdk: Client, world: World, core_v1: client.CoreV1Api
):
    debug = sdk.get("mlp-v1").status.debug
    assert debug is not None and debug.service and debug.password_secret
    text = ok(assay("get", "mlp-v1"))
    assert f"kubectl port-forward -n {world.namespace} svc/{debug.service} {debug.port}" in text
    assert f"password: Secret {debug.password_secret}" in text
    assert "(no results yet)" in text
    secret = core_v1.read_namespaced_secret(debug.password_secret, world.namespace)
    password = base64.b64decode(next(iter(secret.data.values()))).decode()
    for output in (text, ok(assay("get", "mlp-v1", "-o", "yaml")), ok(assay("list", "-o", "json"))):
        assert password not in output


def test_get_json_yaml_name(assay, world: World):
    data = json.loads(ok(assay("get", "cnn-v3", "-o", "json")))
    assert data["kind"] == "Evaluation" and data["metadata"]["uid"] == world.uids["cnn-v3"]
    assert yaml.safe_load(ok(assay("get", "cnn-v3", "-o", "yaml")))["status"]["phase"] == "Succeeded"
    assert ok(assay("get", "cnn-v3", "-o", "name")).strip() == "evaluation.assay.dev/cnn-v3"


def test_get_of_an_unknown_evaluation_is_one_line(assay, world: World):
    line = one_line_error(assay("get", "nope"), NotFound.exit_code)
    assert line == f"error: evaluation 'nope' in namespace '{world.namespace}' not found"


# --- tasks ----------------------------------------------------------------------------------------------


def test_tasks_show_every_attempt_of_the_retried_task(assay, world: World):
    rows = table(ok(assay("tasks", "cnn-v4", "-o", "wide")))
    assert rows[0] == [
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
    by_attempt = {(r[0], r[1], r[2]): r for r in rows[1:]}
    assert set(by_attempt) == {
        ("predict", "0", "1"),
        ("predict", "1", "1"),
        ("predict", "1", "2"),
        ("evaluate", "0", "1"),
    }
    first, retry = by_attempt[("predict", "1", "1")], by_attempt[("predict", "1", "2")]
    pods = world.pods["cnn-v4"][("predict", 1)]
    assert first[3] == "Failed" and "12" in first and first[-1] == pods[0]
    assert first[-2] == "HandlerFailed"  # the reason the runner reported, as status gives it (not "Error")
    assert retry[3] == "Succeeded" and retry[-1] == pods[1]


def test_tasks_of_a_running_evaluation_show_status_entries_and_live_pods(assay):
    rows = table(ok(assay("tasks", "mlp-v1")))
    assert [(r[0], r[1]) for r in rows[1:]] == [("predict", "0"), ("predict", "1"), ("evaluate", "0")]
    assert rows[2][3] == "Running"


def test_tasks_json_and_name(assay, world: World):
    data = json.loads(ok(assay("tasks", "cnn-v4", "-o", "json")))
    assert {(t["step"], t["index"], t["attempts"]) for t in data["tasks"]} >= {("predict", 1, 2)}
    retried = [a for a in data["attempts"] if a["step"] == "predict" and a["index"] == 1]
    assert [(a["attempt"], a["exitCode"], a["pod"]) for a in retried] == [
        (1, 12, world.pods["cnn-v4"][("predict", 1)][0]),
        (2, 0, world.pods["cnn-v4"][("predict", 1)][1]),
    ]
    names = ok(assay("tasks", "cnn-v4", "-o", "name")).split()
    assert f"pod/{world.pods['cnn-v4'][('predict', 1)][0]}" in names and len(names) == 4


# --- logs -----------------------------------------------------------------------------------------------


def test_logs_of_each_attempt_of_a_retried_task(assay, world: World):
    first, retry = world.pods["cnn-v4"][("predict", 1)]
    earlier = assay("logs", "cnn-v4", "--task", "1", "--attempt", "1")
    latest = assay("logs", "cnn-v4", "--step", "predict", "--task", "1")
    if not world.logs_served:
        # kwok serves no log content on this cluster (no Logs CRD): the request still reaches the right pod.
        assert f'pod "{world.namespace}/{first}"' in one_line_error(earlier, Invalid.exit_code)
        assert f'pod "{world.namespace}/{retry}"' in one_line_error(latest, Invalid.exit_code)
        pytest.skip(NO_LOGS)
    assert ok(earlier) == world.log_lines[first]
    assert ok(latest) == world.log_lines[retry]


def test_logs_of_every_task_come_under_headers(assay, world: World):
    result = assay("logs", "cnn-v4")
    if not world.logs_served:
        one_line_error(result, Invalid.exit_code)
        pytest.skip(NO_LOGS)
    text = ok(result)
    for step, index in (("evaluate", 0), ("predict", 0), ("predict", 1)):
        pod = world.pods["cnn-v4"][(step, index)][-1]
        assert (
            f"==> {step}/{index} attempt {2 if index == 1 and step == 'predict' else 1} (pod {pod}) <=="
            in text
        )
        assert world.log_lines[pod] in text


def test_logs_follow_streams_one_task(assay, world: World):
    result = assay("logs", "cnn-v3", "--step", "evaluate", "-f")
    if not world.logs_served:
        one_line_error(result, Invalid.exit_code)
        pytest.skip(NO_LOGS)
    assert ok(result) == world.log_lines[world.pods["cnn-v3"][("evaluate", 0)][-1]]


def test_logs_choices_that_match_nothing_or_too_much_are_one_line(assay):
    assert "no task predict/7" in one_line_error(assay("logs", "cnn-v4", "--task", "7"), NotFound.exit_code)
    line = one_line_error(assay("logs", "cnn-v4", "--task", "1", "--attempt", "3"), NotFound.exit_code)
    assert "attempts there: 1, 2" in line
    line = one_line_error(assay("logs", "cnn-v4", "-f"), Invalid.exit_code)
    assert "pick one with --step and --task" in line


# --- compare --------------------------------------------------------------------------------------------


def test_compare_three_with_a_baseline(assay):
    rows = table(ok(assay("compare", "cnn-v3", "cnn-v4", "mlp-v1", "--baseline", "cnn-v4")))
    assert rows[0] == ["KEY", "cnn-v4 (baseline)", "cnn-v3", "mlp-v1 [Running]"]
    by_key = {r[0]: r[1:] for r in rows[1:]}
    assert by_key["accuracy"] == ["0.97", "0.95 ▼-0.02"]  # mlp-v1 has no results: empty cell
    assert by_key["loss"] == ["0.15", "0.2 ▲+0.05"]
    assert by_key["macro avg/f1"] == ["0.94", "0.94 ="]
    assert by_key["recall"] == ["0.9"]  # cnn-v3 lacks it, so do all others
    assert re.fullmatch(r"\d+", by_key["sys/duration"][0])
    assert re.fullmatch(r"\d+ ([▲▼][-+]\d+|=)", by_key["sys/duration"][1])
    assert by_key["sys/phase"] == ["Succeeded", "Succeeded", "Running"]
    keys = [r[0] for r in rows[1:]]
    assert keys.index("recall") < keys.index("sys/id")  # metrics first


def test_compare_only_diff_and_columns(assay):
    rows = table(ok(assay("compare", "cnn-v3", "cnn-v4", "--only-diff")))
    keys = [r[0] for r in rows[1:]]
    assert "macro avg/f1" not in keys and "sys/model" not in keys and "sys/pool" not in keys
    assert {"accuracy", "loss", "recall", "sys/model_version", "sys/id"} <= set(keys)

    rows = table(ok(assay("compare", "cnn-v3", "cnn-v4", "mlp-v1", "--columns", "loss,accuracy,sys/phase")))
    assert [r[0] for r in rows[1:]] == ["loss", "accuracy", "sys/phase"]

    rows = table(
        ok(assay("compare", "cnn-v3", "cnn-v4", "--columns", "macro avg/f1,accuracy", "--only-diff"))
    )
    assert [r[0] for r in rows[1:]] == ["accuracy"]


def test_compare_json_csv_markdown(assay):
    args = ("compare", "cnn-v3", "cnn-v4", "mlp-v1", "-b", "cnn-v3", "-c", "accuracy,recall")
    data = json.loads(ok(assay(*args, "-o", "json")))
    assert data["baseline"] == "cnn-v3"
    assert [e["name"] for e in data["evaluations"]] == ["cnn-v3", "cnn-v4", "mlp-v1"]
    assert data["evaluations"][2]["running"] is True
    accuracy = data["rows"][0]["values"]
    assert accuracy["cnn-v4"]["trend"] == "up" and accuracy["cnn-v4"]["delta"] == pytest.approx(0.02)
    assert accuracy["mlp-v1"] == {"value": None, "trend": "missing", "delta": None}

    rows = list(csv.reader(io.StringIO(ok(assay(*args, "-o", "csv")))))
    assert rows[0] == ["key", "cnn-v3", "cnn-v4", "cnn-v4 delta", "mlp-v1", "mlp-v1 delta"]
    assert rows[1] == ["accuracy", "0.95", "0.97", "+0.02", "", ""]
    assert rows[2] == ["recall", "", "0.9", "", "", ""]

    lines = ok(assay(*args, "-o", "markdown")).splitlines()
    assert lines[0] == "| key | cnn-v3 (baseline) | cnn-v4 | mlp-v1 [Running] |"
    assert lines[2] == "| accuracy | 0.95 | 0.97 ▲+0.02 |  |"


def test_compare_errors_are_one_line(assay, world: World):
    assert "not found" in one_line_error(assay("compare", "cnn-v3", "ghost"), NotFound.exit_code)
    line = one_line_error(assay("compare", "cnn-v3", "cnn-v4", "-c", "bleu"), Invalid.exit_code)
    assert "no compared evaluation has 'bleu'" in line
    line = one_line_error(assay("compare", "cnn-v3", "cnn-v4", "-b", "mlp-v1"), Invalid.exit_code)
    assert "baseline 'mlp-v1' is not among" in line


# --- create, cancel, suspend, resume ---------------------------------------------------------------------


def test_create_cancel_suspend_resume(assay, kube: Path, world: World, tmp_path: Path):
    path = tmp_path / "evals.yaml"
    path.write_text(
        yaml.safe_dump_all([manifest("new-a", world.pool, tasks=1), manifest("new-b", world.pool, tasks=1)])
    )
    assert ok(assay("create", "-f", str(path))).splitlines() == [
        "evaluation.assay.dev/new-a created",
        "evaluation.assay.dev/new-b created",
    ]
    line = one_line_error(assay("create", "-f", str(path)), AlreadyExists.exit_code)
    assert "new-a" in line and "already exists" in line

    with Client(kube, namespace=world.namespace) as sdk:
        wait_for_phase(sdk, world, "new-a", Phase.RUNNING)
        assert ok(assay("suspend", "new-a")).strip() == "evaluation.assay.dev/new-a suspended"
        assert sdk.get("new-a").spec.suspend is True
        wait_for_phase(sdk, world, "new-a", Phase.SUSPENDED)
        assert ok(assay("resume", "new-a")).strip() == "evaluation.assay.dev/new-a resumed"
        assert sdk.get("new-a").spec.suspend is False
        wait_for_phase(sdk, world, "new-a", Phase.RUNNING)
        assert ok(assay("cancel", "new-b")).strip() == "evaluation.assay.dev/new-b cancelled"
        assert sdk.get("new-b").spec.cancel is True
        wait_for_phase(sdk, world, "new-b", Phase.CANCELLED)
        assert "Cancelled" in ok(assay("get", "new-b"))
        sdk.delete("new-a")
        sdk.delete("new-b")
    assert one_line_error(assay("cancel", "new-zzz"), NotFound.exit_code).endswith("not found")


def test_create_prints_objects_on_request(assay, kube: Path, world: World, tmp_path: Path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(manifest("new-c", world.pool, tasks=1)))
    data = json.loads(ok(assay("create", "-f", str(path), "-o", "json")))
    assert data["metadata"]["namespace"] == world.namespace and data["metadata"]["uid"]
    with Client(kube, namespace=world.namespace) as sdk:
        sdk.delete("new-c")


def test_an_invalid_manifest_is_rejected_by_the_cluster_in_one_line(assay, world: World, tmp_path: Path):
    bad = manifest("bad-one", world.pool)
    bad["spec"]["tasks"] = 0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    line = one_line_error(assay("create", "-f", str(path)), Invalid.exit_code)
    assert "tasks" in line


def test_create_prints_the_operators_price_first(assay, kube: Path, world: World, tmp_path: Path):
    path = tmp_path / "priced.yaml"
    path.write_text(yaml.safe_dump(manifest("priced-a", world.pool, tasks=2)))
    result = assay("create", "-f", str(path), "--yes")
    assert ok(result).strip() == "evaluation.assay.dev/priced-a created"
    quoted = re.search(r"at most (\S+) USD", result.stderr)
    assert quoted, result.stderr
    assert "/hour for 2 tasks (cpu=1 each)" in result.stderr
    with Client(kube, namespace=world.namespace) as sdk:

        def estimated() -> str | None:
            cost = sdk.get("priced-a").status.cost
            return cost.estimated_max if cost is not None else None

        # What the CLI quoted is what the operator writes: one arithmetic, not two.
        assert wait_until(estimated, timeout=60, what="the operator's estimate") == quoted.group(1)
        sdk.delete("priced-a")


def test_create_dry_run_checks_with_admission_and_creates_nothing(
    assay, kube: Path, world: World, tmp_path: Path
):
    path = tmp_path / "dry.yaml"
    path.write_text(yaml.safe_dump(manifest("dry-a", world.pool, tasks=1)))
    result = assay("create", "-f", str(path), "--dry-run")
    assert ok(result).strip() == "evaluation.assay.dev/dry-a checked (dry run): nothing created"
    assert "USD/hour for 1 task" in result.stderr
    bad = manifest("dry-b", world.pool, tasks=1)
    bad["spec"]["tasks"] = 0
    path.write_text(yaml.safe_dump_all([manifest("dry-c", world.pool, tasks=1), bad]))
    assert "tasks" in one_line_error(assay("create", "-f", str(path), "--dry-run"), Invalid.exit_code)
    # Without --dry-run too, every document is checked before the first one is created.
    assert "tasks" in one_line_error(assay("create", "-f", str(path), "--yes"), Invalid.exit_code)
    with Client(kube, namespace=world.namespace) as sdk:
        for name in ("dry-a", "dry-b", "dry-c"):
            with pytest.raises(NotFound):
                sdk.get(name)


def test_create_asks_on_a_terminal_and_a_no_creates_nothing(
    assay, kube: Path, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(commands, "on_a_terminal", lambda: True)
    path = tmp_path / "asked.yaml"
    path.write_text(yaml.safe_dump(manifest("asked-a", world.pool, tasks=1)))
    extra = ["--kubeconfig", str(kube), "-n", world.namespace]
    declined = runner.invoke(app, ["create", "-f", str(path), *extra], input="n\n")
    assert declined.exit_code == 1 and "Create 1 evaluation? [y/N]" in declined.stderr
    with Client(kube, namespace=world.namespace) as sdk:
        with pytest.raises(NotFound):
            sdk.get("asked-a")
        accepted = runner.invoke(app, ["create", "-f", str(path), *extra], input="y\n")
        assert ok(accepted).splitlines()[-1] == "evaluation.assay.dev/asked-a created"  # after the echoed y
        sdk.delete("asked-a")


# --- pools ----------------------------------------------------------------------------------------------


def test_pools_show_capacity_use_queue_and_price(assay, sdk: Client, world: World):
    status = sdk.pool(world.pool).status  # written by the operator, from the fake A100 nodes
    assert status.nodes == 4 and status.capacity
    rows = table(ok(assay("pools", namespaced=False)))
    assert rows[0] == ["NAME", "NODES", "CAPACITY", "IN USE", "QUOTA", "RUNNING", "QUEUED", "PRICE"]
    mine = next(r for r in rows if r[0] == world.pool)
    assert mine[1:3] == ["4", ", ".join(f"{k}={v}" for k, v in status.capacity.items())]
    assert mine[4:] == [
        "cpu=16",
        str(status.running_evaluations),
        "0",
        "cpu=0.50, nvidia.com/gpu=2.50 USD/h",
    ]
    assert (
        f"resourcepool.assay.dev/{world.pool}" in ok(assay("pools", "-o", "name", namespaced=False)).split()
    )
    data = json.loads(ok(assay("pools", "-o", "json", namespaced=False)))
    assert world.pool in [p["metadata"]["name"] for p in data["items"]]
    assert table(ok(assay("pools", "-o", "wide", namespaced=False)))[0][-1] == "DESCRIPTION"


# --- wait -----------------------------------------------------------------------------------------------


def test_wait_returns_at_once_for_a_finished_evaluation_and_times_out_for_a_running_one(assay):
    assert ok(assay("wait", "cnn-v3", "--timeout", "5")).strip() == "evaluation.assay.dev/cnn-v3 Succeeded"
    line = one_line_error(assay("wait", "mlp-v1", "--timeout", "1"), 8)
    assert "still Running after 1s" in line


# --- permissions and the plugin entry point -------------------------------------------------------------


@pytest.fixture(scope="module")
def powerless_kubeconfig(
    kube: Path, world: World, core_v1: client.CoreV1Api, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig for a service account that may do nothing (RBAC gives it no role)."""
    core_v1.create_namespaced_service_account(
        world.namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core_v1.create_namespaced_service_account_token(
        "nobody",
        world.namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token
    config = yaml.safe_load(kube.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    config["users"] = [{"name": "nobody", "user": {"token": token}}]
    context["context"]["user"] = "nobody"
    config["contexts"] = [context]
    path = tmp_path_factory.mktemp("powerless") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


# Every cluster command, each refused by RBAC at its first request (create reads its manifest from stdin).
EVERY_COMMAND = [
    ["list"],
    ["get", "cnn-v3"],
    ["tasks", "cnn-v4"],
    ["logs", "cnn-v4"],
    ["compare", "cnn-v3", "cnn-v4"],
    ["create", "-f", "-"],
    ["cancel", "cnn-v3"],
    ["suspend", "cnn-v3"],
    ["resume", "cnn-v3"],
    ["wait", "cnn-v3"],
    ["pools"],
]


def refused(world: World, args: list[str], *identity: str) -> str:
    """The one error line of a command run as ``identity`` (--kubeconfig ... or --as ...)."""
    document = yaml.safe_dump(manifest("rbac-v1", world.pool))
    result = runner.invoke(app, [*args, *identity, "-n", world.namespace], input=document)
    return one_line_error(result, Forbidden.exit_code)


@pytest.mark.parametrize("args", EVERY_COMMAND)
def test_no_permission_is_one_line_naming_what_was_refused(powerless_kubeconfig: Path, world: World, args):
    line = refused(world, args, "--kubeconfig", str(powerless_kubeconfig))
    assert "forbidden" in line and "system:serviceaccount:" in line and "RBAC" in line


# --- impersonation: kubectl's --as and --as-group ----------------------------------------------------


@pytest.fixture(scope="module")
def readers_group(world: World, rbac_v1: client.RbacAuthorizationV1Api) -> str:
    """A group that may read Evaluations in the world's namespace; no user is bound by name."""
    group = f"{world.namespace}-readers"
    rbac_v1.create_namespaced_role(
        world.namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="evaluation-reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=["assay.dev"], resources=["evaluations"], verbs=["get", "list", "watch"]
                )
            ],
        ),
    )
    rbac_v1.create_namespaced_role_binding(
        world.namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="evaluation-readers"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="evaluation-reader"
            ),
            subjects=[client.RbacV1Subject(kind="Group", name=group, api_group="rbac.authorization.k8s.io")],
        ),
    )
    return group


@pytest.mark.parametrize("args", EVERY_COMMAND)
def test_as_a_user_without_a_role_is_forbidden_naming_that_user(kube: Path, world: World, args: list[str]):
    user = "dana@example.com"  # the admin's kubeconfig alone would be allowed everything
    line = refused(world, args, "--kubeconfig", str(kube), "--as", user)
    assert f'User "{user}" cannot' in line and "forbidden" in line


def test_as_a_user_with_a_group_that_has_a_role_works(assay, sdk: Client, world: World, readers_group: str):
    one_line_error(assay("get", "cnn-v3", "--as", "erin"), Forbidden.exit_code)  # erin alone has no role
    # The role is the second group's: every --as-group is sent, not only the last or a joined one.
    rows = table(ok(assay("list", "--as", "erin", "--as-group", "other", "--as-group", readers_group)))
    assert [r[0] for r in rows[1:]] == [e.name for e in sdk.list()]
    line = one_line_error(
        assay("cancel", "cnn-v3", "--as", "erin", "--as-group", readers_group), Forbidden.exit_code
    )
    assert 'User "erin" cannot patch' in line  # reading is all the role gives


def test_the_sdk_impersonates_a_user_and_groups(kube: Path, world: World, readers_group: str):
    with Client(
        kube, namespace=world.namespace, impersonate="erin", impersonate_groups=["other", readers_group]
    ) as erin:
        assert {e.name for e in erin.list()} >= {"cnn-v3", "cnn-v4"}
    with (
        Client(kube, namespace=world.namespace, impersonate="erin") as alone,
        pytest.raises(Forbidden) as refusal,
    ):
        alone.list()
    assert 'User "erin" cannot list' in str(refusal.value)


def test_the_console_script_and_the_kubectl_plugin(kube: Path, world: World):
    scripts = Path(sys.executable).parent
    assay_script = shutil.which("assay", path=str(scripts))
    assert assay_script is not None
    direct = subprocess.run(
        [assay_script, "list", "-o", "name", "--kubeconfig", str(kube), "-n", world.namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert direct.returncode == 0, direct.stderr
    assert "evaluation.assay.dev/cnn-v4" in direct.stdout.split()

    env = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}
    plugin = subprocess.run(
        [
            kubectl_binary(),
            "assay",
            "get",
            "cnn-v4",
            "-o",
            "name",
            "--kubeconfig",
            str(kube),
            "-n",
            world.namespace,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.strip() == "evaluation.assay.dev/cnn-v4"


def test_shell_completion_offers_evaluation_names_from_the_cluster(kube: Path, world: World):
    scripts = Path(sys.executable).parent
    words = f"assay get --kubeconfig {kube} -n {world.namespace} cnn"
    completed = subprocess.run(
        [str(scripts / "assay")],
        env={**os.environ, "_ASSAY_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "6"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["cnn-v4", "cnn-v3"]
