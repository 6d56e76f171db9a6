"""EvaluationSets on the real cluster with fake pods: parallelism, restarts, maxFailed, suspend and cancel
reaching the children, the table from the children's summaries, and hostile sets."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from operators import OperatorProcess
from test_operator import TIMEOUT, Kubectl, condition, make_pool, operator  # noqa: F401
from typer.testing import CliRunner

from assay.api import EVALUATION_PLURAL, EVALUATION_SET_PLURAL, GROUP, VERSION, EvaluationSet
from assay.cli.main import app
from assay.client import Client
from assay.contract import result_message
from assay.rollup.evaluation_set import expand
from support import FakePods, wait_until

TERMINAL = {"Succeeded", "Failed", "Cancelled", "Expired"}


def model(version: str) -> dict[str, str]:
    return {"name": "svc", "version": version, "uri": f"file:///models/svc-{version}"}


def dataset(name: str) -> dict[str, str]:
    return {"name": name, "uri": f"file:///data/{name}"}


def set_body(name: str, pool: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EvaluationSet",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {"pool": pool, "handler": "h:E", "runtime": {"image": "assay-runtime:test"}}
            },
            "matrix": {"model": [model("v1"), model("v2")], "dataset": [dataset("test"), dataset("noisy")]},
            **spec,
        },
    }


class Sets:
    def __init__(self, api: client.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace

    def create(self, name: str, pool: str, **spec: Any) -> dict[str, Any]:
        body = set_body(name, pool, **spec)
        result: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, EVALUATION_SET_PLURAL, body
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        obj = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, EVALUATION_SET_PLURAL, name
        )
        return dict(obj.get("status") or {})

    def patch_spec(self, name: str, **spec: Any) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, EVALUATION_SET_PLURAL, name, {"spec": spec}
        )

    def wait_phase(self, name: str, phase: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.status(name)).get("phase") == phase and s,
            timeout=timeout,
            what=f"set {name} to be {phase}",
            last_seen=lambda: json.dumps(self.status(name))[:2000],
        )

    def children(self, name: str) -> dict[str, dict[str, Any]]:
        items = self.api.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            EVALUATION_PLURAL,
            label_selector=f"assay.dev/evaluation-set={name}",
        )["items"]
        return {item["metadata"]["name"]: item for item in items}


@pytest.fixture
def sets(custom_objects: client.CustomObjectsApi, namespace: str) -> Sets:
    return Sets(custom_objects, namespace)


class ChildRecorder:
    """Watches the namespace: how often each Evaluation was added, at most how many were unfinished at
    once, and every version of the EvaluationSets' status."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str) -> None:
        self.added: dict[str, int] = {}
        self.phases: dict[str, str | None] = {}
        self.most_unfinished = 0
        self.set_statuses: list[dict[str, Any]] = []
        self._watches = {EVALUATION_PLURAL: watch.Watch(), EVALUATION_SET_PLURAL: watch.Watch()}
        for plural, recorder in self._watches.items():
            thread = threading.Thread(target=self._run, args=(api, namespace, plural, recorder), daemon=True)
            thread.start()

    def _run(self, api: client.CustomObjectsApi, namespace: str, plural: str, recorder: watch.Watch) -> None:
        stream = recorder.stream(
            api.list_namespaced_custom_object, GROUP, VERSION, namespace, plural, timeout_seconds=300
        )
        try:
            for event in stream:
                if plural == EVALUATION_SET_PLURAL:
                    self.set_statuses.append(dict(event["object"].get("status") or {}))
                else:
                    self._child_event(event)
        except Exception:  # the stream ends when stopped; what was recorded is what counts
            return

    def _child_event(self, event: dict[str, Any]) -> None:
        name = event["object"]["metadata"]["name"]
        if event["type"] == "ADDED":
            self.added[name] = self.added.get(name, 0) + 1
        if event["type"] == "DELETED":
            self.phases.pop(name, None)
        else:
            self.phases[name] = (event["object"].get("status") or {}).get("phase")
        unfinished = [p for p in self.phases.values() if p not in TERMINAL]
        self.most_unfinished = max(self.most_unfinished, len(unfinished))

    def stop(self) -> None:
        for recorder in self._watches.values():
            recorder.stop()


@pytest.fixture
def recorder(custom_objects: client.CustomObjectsApi, namespace: str) -> Iterator[ChildRecorder]:
    recording = ChildRecorder(custom_objects, namespace)
    yield recording
    recording.stop()


ACCURACY = {("v1", "test"): 0.9, ("v1", "noisy"): 0.7, ("v2", "test"): 0.95, ("v2", "noisy"): 0.6}


def finish_children(
    sets: Sets, fake_pods: FakePods, namespace: str, name: str, done: set[str], outcome: str = "succeed"
) -> None:
    """End the pod of every running child not yet ended, with the summary of its combination."""
    for child, body in sets.children(name).items():
        if child in done:
            continue
        pods = [
            p
            for p in fake_pods.list(namespace, f"assay.dev/evaluation={child}")
            if p.status.phase == "Running"
        ]
        for pod in pods:
            spec = body["spec"]
            summary = {"accuracy": ACCURACY[spec["model"]["version"], spec["dataset"]["name"]]}
            if outcome == "succeed":
                fake_pods.succeed(namespace, pod.metadata.name, message=result_message(summary, records=100))
            else:
                fake_pods.fail(namespace, pod.metadata.name)
            done.add(child)


def test_a_2x2_set_runs_two_at_a_time_and_fills_its_table(
    operator: OperatorProcess,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
    recorder: ChildRecorder,
    fake_pods: FakePods,
    namespace: str,
    kubectl: Kubectl,
    kube: Path,
) -> None:
    pool = make_pool()
    sets.create("digits", pool, parallelism=2, baseline={"model": "svc@v1"}, objective={"metric": "accuracy"})
    done: set[str] = set()

    def all_done() -> bool:
        finish_children(sets, fake_pods, namespace, "digits", done)
        return sets.status("digits").get("phase") == "Succeeded"

    wait_until(
        all_done,
        timeout=120,
        what="the set to succeed",
        last_seen=lambda: json.dumps(sets.status("digits"))[:2000],
    )
    assert recorder.most_unfinished == 2, recorder.phases
    # Every version of the set is a change of its status (no write that changes nothing).
    writes = recorder.set_statuses
    assert all(a != b for a, b in itertools.pairwise(writes)), writes
    print(f"set versions seen: {len(writes)} (creation and status writes)")
    status = sets.status("digits")
    assert status["progress"] == "4/4" and status["counts"]["succeeded"] == 4
    assert condition(status, "Succeeded")["status"] == "True"
    assert status["best"]["combination"] == "svc@v2 / test" and status["best"]["value"] == 0.95
    table = status["table"]
    assert table["metric"] == "accuracy" and table["columns"] == ["svc@v1", "svc@v2"]
    cells = {(row["dataset"], cell["column"]): cell for row in table["rows"] for cell in row["cells"]}
    assert cells["test", "svc@v1"]["baseline"] is True and cells["test", "svc@v1"]["value"] == 0.9
    assert cells["test", "svc@v2"]["delta"] == pytest.approx(0.05)
    assert cells["noisy", "svc@v2"]["delta"] == pytest.approx(-0.1)
    waited = kubectl("wait", "-n", namespace, "--for=condition=Succeeded", "--timeout=10s", "evalset/digits")
    assert waited.returncode == 0, waited.stderr
    shown = kubectl("get", "evalset", "-n", namespace)
    assert "4/4" in shown.stdout and "accuracy=0.95 svc@v2 / test" in shown.stdout, shown.stdout

    # The CLI and SDK: the list, the table, and the children through the compare view.
    def cli(*args: str) -> str:
        result = CliRunner().invoke(app, [*args, "--kubeconfig", str(kube), "-n", namespace])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "digits" in cli("sets") and "4/4" in cli("sets")
    details = cli("get", "set/digits")
    assert "svc@v1" in details and "svc@v2" in details and "▲+0.05" in details and "▼-0.1" in details, details
    with Client(kube, namespace=namespace) as sdk:
        comparison = sdk.compare_set("digits")
    assert comparison.baseline.name == cells["test", "svc@v1"]["evaluation"]
    assert len(comparison.subjects) == 4
    assert "accuracy" in cli("compare", "--set", "digits", "-o", "csv")


def test_every_child_is_created_once_across_an_operator_sigkill(
    assay_crds: None,
    kube: Path,
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
    recorder: ChildRecorder,
    namespace: str,
    tmp_path: Path,
) -> None:
    pool = make_pool()
    first = OperatorProcess.start("first", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    sets.create("restart", pool, parallelism=4)
    try:
        wait_until(lambda: recorder.added, timeout=TIMEOUT, what="the first child")
    finally:
        first.kill()
    second = OperatorProcess.start("second", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    try:
        wait_until(lambda: len(sets.children("restart")) == 4, timeout=TIMEOUT, what="four children")
        wait_until(
            lambda: sets.status("restart").get("counts", {}).get("created") == 4,
            timeout=TIMEOUT, what="the status to count four children",
        )  # fmt: skip
    finally:
        second.stop()
        print(first.log()[-3000:], second.log()[-3000:])
    assert sorted(recorder.added.values()) == [1, 1, 1, 1], recorder.added


def test_max_failed_stops_creation_and_fails_the_set(
    operator: OperatorProcess,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
    fake_pods: FakePods,
    namespace: str,
) -> None:
    pool = make_pool()
    template = set_body("flaky", pool)["spec"]["template"]
    template["spec"]["backoffLimitPerTask"] = 0  # the first failed pod fails its Evaluation
    sets.create("flaky", pool, parallelism=1, maxFailed=1, template=template)
    (child,) = wait_until(
        lambda: list(sets.children("flaky")) or None, timeout=TIMEOUT, what="the first child"
    )
    (pod,) = fake_pods.wait_running(namespace, f"assay.dev/evaluation={child}")
    fake_pods.fail(namespace, pod.metadata.name)
    status = sets.wait_phase("flaky", "Failed", timeout=60)
    assert child in status["message"] and "maxFailed 1 reached" in status["message"]
    assert condition(status, "Failed")["status"] == "True"
    assert list(sets.children("flaky")) == [child]
    assert status["counts"]["created"] == 1


def children_in(sets: Sets, name: str, phase: str) -> bool:
    return all(c.get("status", {}).get("phase") == phase for c in sets.children(name).values())


def test_suspend_and_cancel_reach_the_children(
    operator: OperatorProcess,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
    fake_pods: FakePods,
    namespace: str,
) -> None:
    pool = make_pool()
    sets.create("paused", pool, parallelism=2)
    wait_until(lambda: len(sets.children("paused")) == 2, timeout=TIMEOUT, what="two children")
    fake_pods.wait_running(namespace, "assay.dev/evaluation", count=2)
    sets.patch_spec("paused", suspend=True)
    sets.wait_phase("paused", "Suspended")
    wait_until(lambda: children_in(sets, "paused", "Suspended"), timeout=TIMEOUT, what="Suspended children")
    assert len(sets.children("paused")) == 2
    sets.patch_spec("paused", suspend=False, cancel=True)
    status = sets.wait_phase("paused", "Cancelled")
    wait_until(lambda: children_in(sets, "paused", "Cancelled"), timeout=TIMEOUT, what="Cancelled children")
    assert condition(status, "Cancelled")["status"] == "True"
    assert len(sets.children("paused")) == 2


def apply(kubectl: Kubectl, namespace: str, body: dict[str, Any]) -> Any:
    return kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


@pytest.mark.parametrize(
    ("matrix", "wanted"),
    [
        ({"model": [], "dataset": [dataset("t")]}, "matrix.model is empty"),
        (
            {"model": [model(f"v{i}") for i in range(20)], "dataset": [dataset(f"d{i}") for i in range(15)]},
            "more than 256 combinations",
        ),
        ({"model": [model("v1")], "dataset": [dataset("t")], "temperature": [0.1]}, "unknown field"),
    ],
)
def test_hostile_matrices_are_refused_by_the_schema(
    assay_crds: None, kubectl: Kubectl, namespace: str, matrix: dict[str, Any], wanted: str
) -> None:
    refused = apply(kubectl, namespace, set_body("hostile", "pool", matrix=matrix))
    assert refused.returncode != 0 and wanted in refused.stderr, refused.stderr


def test_the_matrix_is_immutable(assay_crds: None, kubectl: Kubectl, sets: Sets, namespace: str) -> None:
    sets.create("fixed", "pool")
    changed = kubectl(
        "patch", "evalset", "fixed", "-n", namespace, "--type=merge", "-p",
        json.dumps({"spec": {"matrix": {"model": [model("v3")]}}}),
    )  # fmt: skip
    assert changed.returncode != 0 and "immutable" in changed.stderr, changed.stderr


def test_a_baseline_not_in_the_matrix_is_not_accepted(
    operator: OperatorProcess,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
) -> None:
    sets.create("nobase", make_pool(), baseline={"model": "svc@v9"})
    status = sets.wait_phase("nobase", "Failed")
    accepted = condition(status, "Accepted")
    assert (
        accepted["status"] == "False" and "svc@v9" in accepted["message"] and "svc@v1" in accepted["message"]
    )
    assert sets.children("nobase") == {}


def test_a_250_character_set_name_gets_valid_children(
    operator: OperatorProcess,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    name = ("long." * 50)[:249] + "x"
    sets.create(name, make_pool())

    def owned() -> list[dict[str, Any]]:
        items = custom_objects.list_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL)
        mine = [e for e in items["items"] if e["metadata"]["ownerReferences"][0]["name"] == name]
        return mine if len(mine) == 4 else []

    children = wait_until(owned, timeout=TIMEOUT, what="four children of the long-named set")
    assert all(len(e["metadata"]["name"]) <= 253 for e in children)
    wait_until(
        lambda: sets.status(name).get("counts", {}).get("created") == 4,
        timeout=TIMEOUT,
        what="the set's status",
    )


def test_a_child_name_taken_by_another_evaluation_fails_the_set_clearly(
    operator: OperatorProcess,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    pool = make_pool()
    body = set_body("taken", pool)
    spec = EvaluationSet.model_validate(body).spec
    first = expand(spec, "taken")[0]
    squatter = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": first.child},
        "spec": {**body["spec"]["template"]["spec"], **first.values, "suspend": True},
    }
    custom_objects.create_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, squatter)
    sets.create("taken", pool)
    status = sets.wait_phase("taken", "Failed")
    assert first.child in status["message"] and "not a child of this set" in status["message"], status


def test_the_webhook_refuses_a_set_the_controller_could_not_run(
    assay_crds: None,
    kube: Path,
    make_pool: Callable[..., str],  # noqa: F811
    sets: Sets,
    namespace: str,
    tmp_path: Path,
) -> None:
    process = OperatorProcess.start(
        "webhook",
        kubeconfig=kube,
        namespaces=[namespace],
        log_dir=tmp_path,
        extra_args=["--webhook", "local"],
    )
    try:
        wait_until(
            lambda: "Serving the admission webhook locally" in process.log(), timeout=TIMEOUT, what="webhook"
        )
        pool = make_pool()

        def refusal() -> str:
            try:
                sets.create("nobase", pool, baseline={"model": "svc@v9"})
            except ApiException as exc:
                body = str(exc.body)
                return body if "svc@v9" in body else ""  # until the server listens: "failed calling webhook"
            raise AssertionError("a set with a baseline not in its matrix was admitted")

        refused = wait_until(refusal, timeout=TIMEOUT, what="the webhook to refuse the set")
        assert "is not in the matrix" in refused and "svc@v1" in refused
        incomplete = set_body("nodata", pool, matrix={"model": [model("v1")]})
        with pytest.raises(ApiException) as missing:
            sets.api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, EVALUATION_SET_PLURAL, incomplete
            )
        assert "dataset" in str(missing.value.body)
        sets.create("fine", pool)
        sets.wait_phase("fine", "Running")
    finally:
        process.stop()
        print(process.log()[-3000:])
