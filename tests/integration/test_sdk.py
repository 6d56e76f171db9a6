"""assay.Client against the real cluster: the same operations as the CLI, returning typed models."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_scenarios import NO_LOGS, World, manifest
from kubernetes import client

from assay import Client
from assay.api import Evaluation, Phase, ResourcePool, TaskStatus
from assay.attempts import TaskAttempt
from assay.compare import Trend
from assay.contract import result_message
from assay.errors import AlreadyExists, Forbidden, Invalid, NotFound, WaitTimeout
from support import FakePods, wait_until


@pytest.fixture
def sdk(kube: Path, world: World) -> Iterator[Client]:
    with Client(kube, namespace=world.namespace) as made:
        yield made


def test_list_returns_typed_evaluations_newest_first(sdk: Client, world: World):
    evaluations = sdk.list()
    assert all(isinstance(e, Evaluation) for e in evaluations)
    assert [e.name for e in evaluations] == ["mlp-v1", "cnn-v4", "cnn-v3"]
    assert evaluations[1].status.phase is Phase.SUCCEEDED
    assert evaluations[1].status.results is not None
    assert evaluations[1].status.results.summary["recall"] == 0.9


def test_list_filters(sdk: Client, world: World):
    assert [e.name for e in sdk.list(selector="team=vision")] == ["mlp-v1", "cnn-v4"]
    assert [e.name for e in sdk.list(phase="Running")] == ["mlp-v1"]
    assert sdk.list(pool="elsewhere") == []
    everywhere = sdk.list(all_namespaces=True, pool=world.pool)
    assert {(e.namespace, e.name) for e in everywhere} >= {(world.namespace, "cnn-v3")}


def test_get_and_not_found(sdk: Client, world: World):
    evaluation = sdk.get("cnn-v3")
    assert evaluation.metadata.uid == world.uids["cnn-v3"]
    assert evaluation.spec.model.version == "v3"
    with pytest.raises(NotFound, match=f"evaluation 'ghost' in namespace '{world.namespace}' not found"):
        sdk.get("ghost")
    with pytest.raises(NotFound):
        sdk.get("cnn-v3", namespace="no-such-namespace-here")


def test_tasks_and_attempts_of_a_retried_task(sdk: Client, world: World):
    tasks = sdk.tasks("cnn-v4")
    assert all(isinstance(t, TaskStatus) for t in tasks)
    retried = next(t for t in tasks if t.step.value == "predict" and t.index == 1)
    assert retried.attempts == 2
    attempts = [a for a in sdk.attempts("cnn-v4") if a.step == "predict" and a.index == 1]
    assert all(isinstance(a, TaskAttempt) for a in attempts)
    assert [(a.attempt, a.phase, a.exit_code, a.pod) for a in attempts] == [
        (1, "Failed", 12, world.pods["cnn-v4"][("predict", 1)][0]),
        (2, "Succeeded", 0, world.pods["cnn-v4"][("predict", 1)][1]),
    ]
    assert attempts[0].node and attempts[0].node.startswith("kwok-")


def test_logs_of_a_chosen_attempt(sdk: Client, world: World):
    first, retry = world.pods["cnn-v4"][("predict", 1)]
    if not world.logs_served:
        with pytest.raises(Invalid, match=f'pod "{world.namespace}/{first}"'):
            sdk.logs("cnn-v4", step="predict", task=1, attempt=1)
        pytest.skip(NO_LOGS)
    assert sdk.logs("cnn-v4", step="predict", task=1, attempt=1) == world.log_lines[first]
    assert sdk.logs("cnn-v4", step="predict", task=1) == world.log_lines[retry]
    finished = world.pods["cnn-v4"][("evaluate", 0)][-1]
    assert "".join(sdk.follow_logs("cnn-v4", step="evaluate")) == world.log_lines[finished]
    # A running task streams: the first chunk comes at once; closing the iterator ends the stream.
    stream = sdk.follow_logs("mlp-v1", step="predict", task=1)
    running = world.pods["mlp-v1"][("predict", 1)][-1]
    assert next(stream) == world.log_lines[running]
    stream.close()


def test_logs_need_one_task(sdk: Client):
    with pytest.raises(Invalid, match="3 tasks match"):
        sdk.logs("cnn-v4")


def test_compare_three_with_a_baseline(sdk: Client):
    comparison = sdk.compare(
        ["cnn-v3", "cnn-v4", "mlp-v1"], baseline="cnn-v4", columns=["accuracy", "recall"]
    )
    assert [s.name for s in comparison.subjects] == ["cnn-v4", "cnn-v3", "mlp-v1"]
    assert comparison.subjects[2].running
    accuracy, recall = comparison.rows
    assert accuracy.cells[1].trend is Trend.DOWN and accuracy.cells[1].delta == pytest.approx(-0.02)
    assert accuracy.cells[2].value is None
    assert recall.cells[1].value is None and recall.cells[1].trend is Trend.MISSING
    only = sdk.compare(["cnn-v3", "cnn-v4"], only_diff=True)
    assert "macro avg/f1" not in [r.key for r in only.rows]
    with pytest.raises(Invalid, match="no compared evaluation has 'bleu'"):
        sdk.compare(["cnn-v3", "cnn-v4"], columns=["bleu"])


def test_pools(sdk: Client, world: World):
    pools = sdk.pools()
    assert all(isinstance(p, ResourcePool) for p in pools)
    mine = sdk.pool(world.pool)
    assert mine in pools
    assert mine.status.nodes == 4 and mine.status.capacity  # the operator summed the 4 fake A100 nodes
    assert mine.spec.pricing is not None and mine.spec.pricing.per_hour["cpu"] == "0.50"
    with pytest.raises(NotFound, match="resource pool 'nope' not found"):
        sdk.pool("nope")


def test_create_from_model_dict_and_file_then_control(sdk: Client, world: World, tmp_path: Path):
    from_model = sdk.create(Evaluation.model_validate(manifest("sdk-model", world.pool, tasks=1)))
    assert from_model.metadata.uid and from_model.namespace == world.namespace
    from_dict = sdk.create(manifest("sdk-dict", world.pool, tasks=1))
    assert from_dict.name == "sdk-dict"
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(manifest("sdk-file", world.pool, tasks=1)))
    assert [e.name for e in sdk.create_from_file(path)] == ["sdk-file"]
    with pytest.raises(AlreadyExists, match="sdk-file"):
        sdk.create_from_file(path)

    assert sdk.suspend("sdk-model").spec.suspend is True
    assert sdk.resume("sdk-model").spec.suspend is False
    assert sdk.cancel("sdk-dict").spec.cancel is True
    assert sdk.get("sdk-dict").spec.cancel is True
    for name in ("sdk-model", "sdk-dict", "sdk-file"):
        sdk.delete(name)
    with pytest.raises(NotFound):
        sdk.cancel("sdk-model")


def test_create_rejects_what_the_cluster_rejects(sdk: Client, world: World):
    bad = manifest("sdk-bad", world.pool)
    bad["spec"]["tasks"] = 0
    with pytest.raises(Invalid, match="tasks"):
        sdk.create(bad)
    with pytest.raises(Invalid, match="expected kind Evaluation"):
        sdk.create({**manifest("x", world.pool), "kind": "Pod"})


def test_wait_blocks_until_the_operator_reports_success(sdk: Client, world: World, core_v1: client.CoreV1Api):
    sdk.create(manifest("sdk-wait", world.pool, tasks=1))
    fake_pods = FakePods(core_v1)

    def the_task_ends() -> None:
        pod = fake_pods.wait_running(world.namespace, "assay.dev/evaluation=sdk-wait", timeout=60)[0]
        wait_until(lambda: "Running" in seen, timeout=60, what="sdk.wait to report Running")
        fake_pods.succeed(world.namespace, pod.metadata.name, message=result_message({"accuracy": 0.5}, 10))

    seen: list[str] = []
    player = threading.Thread(target=the_task_ends)
    player.start()
    started = time.monotonic()
    try:
        done = sdk.wait("sdk-wait", timeout=90, on_change=lambda e: seen.append(str(e.status.phase)))
    finally:
        player.join()
    assert done.status.phase is Phase.SUCCEEDED
    assert done.status.results is not None and done.status.results.summary == {"accuracy": 0.5}
    assert time.monotonic() - started < 60
    assert "Running" in seen and seen[-1] == "Succeeded"
    sdk.delete("sdk-wait")


def test_wait_times_out_and_notices_deletion(sdk: Client, world: World):
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="is still Running after 1s"):
        sdk.wait("mlp-v1", timeout=1)
    assert time.monotonic() - started < 10

    sdk.create(manifest("sdk-gone", world.pool, tasks=1))
    deleted: list[str] = []

    def delete_once_wait_has_read_it(seen: Evaluation) -> None:
        # Deleted after wait's first read, so that its watch is what must notice.
        if not deleted:
            sdk.delete(seen.metadata.name)
            deleted.append(seen.metadata.name)

    with pytest.raises(NotFound):
        sdk.wait("sdk-gone", timeout=20, on_change=delete_once_wait_has_read_it)
    assert deleted == ["sdk-gone"]


def test_no_permission_raises_forbidden(kube: Path, world: World, core_v1: client.CoreV1Api, tmp_path: Path):
    core_v1.create_namespaced_service_account(
        world.namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sdk-nobody"))
    )
    token = core_v1.create_namespaced_service_account_token(
        "sdk-nobody",
        world.namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token
    config = yaml.safe_load(kube.read_text())
    config["users"] = [{"name": "nobody", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "nobody"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    with Client(path, namespace=world.namespace) as powerless:
        with pytest.raises(Forbidden, match='cannot list resource "evaluations"'):
            powerless.list()
        with pytest.raises(Forbidden):
            powerless.cancel("cnn-v3")
