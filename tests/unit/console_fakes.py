"""A stand-in for :class:`assay.Client` in the console's page tests: model fixtures, recorded calls, and
errors on demand. (The console against the real cluster is tests/integration/test_console.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cli_samples import NOW, evaluation, pod, pool, running
from starlette.testclient import TestClient

from assay.api import Evaluation, EvaluationSet, ResourcePool
from assay.attempts import TaskAttempt, attempts_from_pods
from assay.console.app import ListScope, create_app
from assay.errors import AssayError, Invalid, NotFound
from assay.results import DEFAULT_PAGE_SIZE, ResultsPage, RowFilter, page_from
from assay.rollup.evaluation_set import Child, expand, plan_set

# cnn-v3's output: records 0..11, label = index % 3, records 4 and 9 predicted wrong.
RESULT_LINES = [
    f'{{"index":{i},"prediction":{(i + 1) % 3 if i in (4, 9) else i % 3},"label":{i % 3}}}\n'.encode()
    for i in range(12)
]
RESULT_REPORT: dict[str, Any] = {
    "records": 12,
    "predictionShards": 1,
    "metrics": {
        "accuracy": 0.8333,
        "per class": {
            "0": {"precision": 1.0, "recall": 1.0},
            "1": {"precision": 0.6, "recall": 0.75},
            "2": {"precision": 0.75, "recall": 0.75},
        },
        "confusion matrix": {"labels": [0, 1, 2], "matrix": [[4, 0, 0], [0, 3, 1], [0, 1, 3]]},
    },
}

EXAMPLE_SET = Path(__file__).resolve().parents[2] / "examples" / "digits-matrix" / "evaluationset.yaml"

TOKEN = "test-token"
HOST = "testserver"


def sample_evaluations() -> list[Evaluation]:
    """Newest first, as the SDK lists them: a running one, two finished with different metrics."""
    return [
        running("mlp-v1"),
        evaluation(
            "cnn-v4",
            created="2026-11-26T11:30:00Z",
            summary={"accuracy": 0.97, "macro avg/f1": 0.99, "loss": 0.02, "recall": 0.9},
        ),
        evaluation("cnn-v3"),
    ]


def sample_set() -> EvaluationSet:
    """The example's set in team-a, its four children Succeeded (two models x two datasets)."""
    raw = yaml.safe_load(EXAMPLE_SET.read_text())
    raw["metadata"].update(namespace="team-a", creationTimestamp="2026-11-26T10:00:00Z")
    evaluation_set = EvaluationSet.model_validate(raw)
    accuracy = iter([0.98, 0.97, 0.99, 0.9])
    children = {
        c.child: Child(c.child, "Succeeded", summary={"accuracy": next(accuracy)})
        for c in expand(evaluation_set.spec, evaluation_set.name)
    }
    status = plan_set(evaluation_set, children, [], NOW).status
    return evaluation_set.model_copy(update={"status": status})


@dataclass
class FakeClient:
    evaluations: list[Evaluation] = field(default_factory=sample_evaluations)
    namespace: str = "team-a"
    source: str = "kubeconfig (test)"
    fail_with: AssayError | None = None
    reject: str | None = None  # what the admission webhook says to a create
    calls: list[tuple[str, str]] = field(default_factory=list)
    debug_passwords: dict[str, str | None] = field(default_factory=dict)  # by created evaluation
    logs: dict[str, str] = field(default_factory=lambda: {"cnn-v3-predict-1-b": "loading model\ndone\n"})

    def _check(self, call: str, name: str = "") -> None:
        self.calls.append((call, name))
        if self.fail_with is not None:
            raise self.fail_with

    def list(self, namespace: str | None = None, *, all_namespaces: bool = False) -> list[Evaluation]:
        self._check("list")
        return [e for e in self.evaluations if all_namespaces or e.namespace == (namespace or self.namespace)]

    def get(self, name: str, namespace: str | None = None) -> Evaluation:
        self._check("get", name)
        for e in self.evaluations:
            if e.name == name and e.namespace == (namespace or self.namespace):
                return e
        raise NotFound(f"evaluation {name!r} in namespace {namespace!r} not found")

    def attempts(self, name: str, namespace: str | None = None) -> list[TaskAttempt]:
        self._check("attempts", name)
        pods = [
            pod("cnn-v3-predict-1-a", "predict", 1, "2026-11-26T11:01:00Z", phase="Failed", exit_code=12),
            pod("cnn-v3-predict-1-b", "predict", 1, "2026-11-26T11:01:30Z"),
        ]
        return attempts_from_pods(pods, {("predict", 1): 2})

    def attempt_logs(
        self, attempt: TaskAttempt, *, namespace: str | None = None, tail_lines: int | None = None
    ) -> str:
        self._check("logs", attempt.pod)
        return self.logs.get(attempt.pod, "")

    def _flag(self, verb: str, name: str, namespace: str | None) -> Evaluation:
        self._check(verb, name)
        return self.get(name, namespace)

    def cancel(self, name: str, namespace: str | None = None) -> Evaluation:
        return self._flag("cancel", name, namespace)

    def suspend(self, name: str, namespace: str | None = None) -> Evaluation:
        return self._flag("suspend", name, namespace)

    def resume(self, name: str, namespace: str | None = None) -> Evaluation:
        return self._flag("resume", name, namespace)

    def sets(self, namespace: str | None = None, *, all_namespaces: bool = False) -> list[EvaluationSet]:
        self._check("sets")
        return [s for s in [sample_set()] if all_namespaces or s.namespace == (namespace or self.namespace)]

    def evaluation_set(self, name: str, namespace: str | None = None) -> EvaluationSet:
        self._check("evaluation_set", name)
        for found in self.sets(namespace):
            if found.name == name:
                return found
        raise NotFound(f"evaluation set {name!r} in namespace {namespace!r} not found")

    def pools(self) -> list[ResourcePool]:
        self._check("pools")
        return [pool()]

    def pool(self, name: str) -> ResourcePool:
        self._check("pool", name)
        if name != "a100":
            raise NotFound(f"resource pool {name!r} not found")
        return pool()

    def results(
        self,
        name: str,
        namespace: str | None = None,
        *,
        offset: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        label: str | None = None,
        prediction: str | None = None,
        only_wrong: bool = False,
    ) -> ResultsPage:
        self._check("results", name)
        if name != "cnn-v3":
            raise NotFound(f"evaluation {name!r} has no results yet (it is Running)")
        keep = RowFilter(only_wrong=only_wrong, label=label, prediction=prediction)
        names = ["shard-00000-of-00001.jsonl"]
        return page_from(
            RESULT_REPORT, names, lambda _: iter(RESULT_LINES), offset=offset, limit=limit, keep=keep
        )

    def create(
        self,
        evaluation: Mapping[str, Any],
        namespace: str | None = None,
        *,
        debug_password: str | None = None,
    ) -> Evaluation:
        self._check("create", evaluation["metadata"]["name"])
        self.debug_passwords[evaluation["metadata"]["name"]] = debug_password
        if self.reject is not None:
            raise Invalid(self.reject)
        raw = {**evaluation, "metadata": {**evaluation["metadata"], "namespace": namespace}}
        created = Evaluation.model_validate(raw)
        self.evaluations.insert(0, created)
        return created


def console(
    fake: FakeClient,
    *,
    all_namespaces: bool = False,
    logged_in: bool = True,
    raise_server_exceptions: bool = True,
    read_only: bool = False,
) -> TestClient:
    app = create_app(
        fake,
        ListScope(fake.namespace, all_namespaces),
        token=TOKEN,
        hosts={HOST},
        now=lambda: NOW,
        read_only=read_only,
    )
    browser = TestClient(
        app,
        base_url=f"http://{HOST}",
        follow_redirects=False,
        raise_server_exceptions=raise_server_exceptions,
    )
    if logged_in:
        assert browser.get(f"/?token={TOKEN}").status_code == 303
    return browser
