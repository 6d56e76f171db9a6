"""Hostile input: every manifest of tests/hostile/ is refused at admission with a message naming what is
wrong, or is accepted and ends with a clear phase and condition, while a healthy evaluation runs alongside and
succeeds, and the one operator process (validating webhook served locally) never exits.

A corpus file is one Evaluation or ResourcePool whose annotations say how it must end:

* ``hostile.assay.dev/expect``: ``rejected``, the phase the Evaluation must reach, or ``accepted`` (a pool);
* ``hostile.assay.dev/field``: (rejected) the field the refusal must name (``spec.tasks: ...`` or
  ``"spec.tasks"``), e.g. ``spec.tasks``;
* ``hostile.assay.dev/condition``: (a phase) ``Type=Reason`` of a condition the status must have;
* ``hostile.assay.dev/says``: a text the rejection (or that condition's message) must contain;
* ``hostile.assay.dev/patches``: JSON list of ``{"patch": merge patch, "field": path, "says": text}`` applied
  once it is in its phase; a patch with ``says`` must be refused naming that field with that text, one
  without must be accepted;
* ``hostile.assay.dev/pod-outcome``/``pod-message``/``pod-exit-code``: how its (single) fake pod ends.

Pools of the corpus are created first; an Evaluation naming one is created once the webhook knows it.
Placeholders: ``$POOL`` (a pool open to the test's namespace), ``$FORBIDDEN_POOL`` (open to another namespace
only), ``$OTHER_SECRET`` (a Secret that exists only in another namespace), ``$RUN`` (unique per run),
``$REPEAT(c,n)`` (``c`` n times). The test prints one ``HOSTILE`` line per file: how it ended.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operators import OperatorProcess
from test_operator import make_pool  # noqa: F401 (fixtures)

from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION
from assay.contract import result_message
from support import (
    EXIT_CODE_ANNOTATION,
    MESSAGE_ANNOTATION,
    OUTCOME_ANNOTATION,
    WaitTimeoutError,
    wait_until,
)

pytestmark = pytest.mark.faults

CORPUS = Path(__file__).resolve().parents[1] / "hostile"
PREFIX = "hostile.assay.dev/"
REPEAT = re.compile(r"\$REPEAT\((.),(\d+)\)")
HEALTHY_SUMMARY = {"accuracy": 0.97}
# ERROR lines the operator may log while the corpus runs: none.
ALLOWED_ERRORS: tuple[re.Pattern[str], ...] = ()
# A refusal must say what is wrong in a message a person can read.
LONGEST_CLEAR_MESSAGE = 16_384


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.yaml"))


def substitute(value: Any, placeholders: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in placeholders.items():
            value = value.replace(key, replacement)
        return REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), value)
    if isinstance(value, dict):
        return {substitute(k, placeholders): substitute(v, placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, placeholders) for v in value]
    return value


@dataclass
class Case:
    file: str
    body: dict[str, Any]
    expect: str
    says: str
    outcome: str = ""  # how it ended, for the report
    created: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("annotations") or {})

    @property
    def pool(self) -> bool:
        return self.body.get("kind") == "ResourcePool"

    @property
    def field(self) -> str:
        return self.annotations.get(PREFIX + "field", "")

    @property
    def condition(self) -> tuple[str, str]:
        type_, _, reason = self.annotations.get(PREFIX + "condition", "").partition("=")
        return type_, reason


def load(path: Path, placeholders: dict[str, str]) -> Case:
    body = substitute(yaml.safe_load(path.read_text()), placeholders)
    annotations = body["metadata"].get("annotations") or {}
    return Case(path.name, body, annotations[PREFIX + "expect"], annotations.get(PREFIX + "says", ""))


def refusal_text(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.body))
    except (TypeError, ValueError):
        return str(exc.body)


def names_field(refusal: str, field: str) -> bool:
    """The refusal names ``field`` as the apiserver and the webhook do: ``spec.tasks: ...`` or
    ``"spec.tasks"`` (not merely a word of it: ``spec`` is not named by ``spec.pool: ...``)."""
    return re.search(rf'[\s\[",]{re.escape(field)}(: |")', refusal) is not None


def test_the_corpus_is_big_enough() -> None:
    files = corpus_files()
    assert len(files) >= 60, f"tests/hostile/ has only {len(files)} manifests"
    for path in files:
        document = yaml.safe_load(path.read_text())
        annotations = document["metadata"]["annotations"]
        assert path.read_text().startswith("# "), f"{path.name}: first line must say what it tries"
        assert PREFIX + "expect" in annotations, path.name
        expect = annotations[PREFIX + "expect"]
        if expect == "rejected":  # a refusal names the field, and says what is wrong with it
            assert annotations.get(PREFIX + "field") and annotations.get(PREFIX + "says"), path.name
        elif expect != "accepted":  # a phase comes with the condition that explains it
            assert "=" in annotations.get(PREFIX + "condition", ""), path.name


@pytest.fixture
def other_namespace(core_v1: client.CoreV1Api, second_namespace: str) -> tuple[str, str]:
    """A second namespace holding a Secret the test's namespace must not be able to use."""
    secret = "debug-elsewhere"
    core_v1.create_namespaced_secret(
        second_namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=secret), string_data={"password": "elsewhere"}),
    )
    return second_namespace, secret


def test_hostile_manifests_are_refused_or_end_clearly(
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    other_namespace: tuple[str, str],
    make_pool: Callable[..., str],  # noqa: F811
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    kwok_nodes: list[str],
) -> None:
    operator = OperatorProcess.start(
        "hostile",
        kubeconfig=kube,
        namespaces=[namespace],
        log_dir=tmp_path,
        extra_args=["--webhook", "local"],
    )
    run = secrets.token_hex(3)
    created_pools: list[str] = []
    try:
        wait_until(
            lambda: "Serving the admission webhook locally" in operator.log() or not operator.alive(),
            timeout=60,
            what="the operator's webhook",
        )
        pool = make_pool()
        placeholders = {
            "$FORBIDDEN_POOL": make_pool(namespaces=[other_namespace[0]]),
            "$POOL": pool,
            "$OTHER_SECRET": other_namespace[1],
            "$RUN": run,
        }
        time.sleep(1)  # the webhook server listens right after start-up
        healthy = _create(custom_objects, namespace, _healthy(pool))
        assert healthy is None, f"the healthy evaluation was refused: {healthy}"

        cases = [load(path, placeholders) for path in corpus_files()]
        for case in sorted(cases, key=lambda c: not c.pool):  # pools first: Evaluations may name them
            refusal = _create_once_the_pool_is_known(custom_objects, namespace, case, created_pools)
            if refusal is None:
                case.created = True
                if case.pool:
                    created_pools.append(case.name)
            else:
                case.outcome = f"rejected: {refusal}"
        _drive(cases, namespace, core_v1, batch_v1, custom_objects)
        _check(cases, custom_objects, namespace)
        _finish_healthy(core_v1, namespace)
        status = wait_until(
            lambda: (
                (s := _status(custom_objects, namespace, "healthy")).get("phase") in ("Succeeded", "Failed")
                and s
            ),
            timeout=60,
            what="the healthy evaluation to finish",
        )
        assert status["phase"] == "Succeeded", status
        assert status["results"]["summary"] == HEALTHY_SUMMARY
        assert operator.alive(), "the operator exited"
        errors = [
            line
            for line in operator.log().splitlines()
            if " ERROR " in line and not any(allowed.search(line) for allowed in ALLOWED_ERRORS)
        ]
        print(f"HOSTILE operator: alive, {len(errors)} ERROR lines in its log")
        assert not errors, "\n".join(errors[:20])
    finally:
        operator.stop()
        for name in created_pools:
            with contextlib.suppress(ApiException):
                custom_objects.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
        print(operator.log()[-3000:])
    for case in cases:
        print(f"HOSTILE {case.file}: {case.outcome[:200]}")
    rejected = sum(1 for c in cases if c.outcome.startswith("rejected"))
    ended = len(cases) - rejected
    print(f"HOSTILE total {len(cases)}: {rejected} rejected at admission, {ended} ended in a phase")
    wrong = {c.file: c.problems for c in cases if c.problems}
    assert not wrong, json.dumps(wrong, indent=1, ensure_ascii=False)[:20000]


def _healthy(pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": "healthy"},
        "spec": {
            "pool": pool,
            "model": {"name": "m", "uri": "file:///models/m"},
            "handler": "m_eval:Evaluator",
            "dataset": {"name": "d", "uri": "file:///data/d"},
            "tasks": 2,
            "resources": {"nvidia.com/gpu": "0", "cpu": "100m", "memory": "64Mi"},
        },
    }


def _create(api: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> str | None:
    """Create ``body`` with strict field validation; the refusal's message, or None when created."""
    try:
        if body.get("kind") == "ResourcePool":
            api.create_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, body, field_validation="Strict")
        else:
            api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, EVALUATION_PLURAL, body, field_validation="Strict"
            )
    except ApiException as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            return refusal_text(exc)
        raise
    return None


def _create_once_the_pool_is_known(
    api: client.CustomObjectsApi, namespace: str, case: Case, corpus_pools: list[str]
) -> str | None:
    """Create the case; an Evaluation on a pool of the corpus waits (deadline) for the webhook's index to
    show that pool, which it learns from a watch event a moment after the create."""
    pool = (case.body.get("spec") or {}).get("pool")
    if case.pool or pool not in corpus_pools:
        return _create(api, namespace, case.body)
    refusals: list[str | None] = []

    def created() -> bool:
        refusals.append(_create(api, namespace, case.body))
        return refusals[-1] is None or "UnknownPool" not in refusals[-1]

    wait_until(created, timeout=30, what=f"pool {pool} known to the webhook", last_seen=lambda: refusals[-1:])
    return refusals[-1]


def _status(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return dict(
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_PLURAL, name).get("status")
        or {}
    )


def _drive(
    cases: list[Case],
    namespace: str,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
) -> None:
    """End the fake pods of the cases that say how, until each accepted Evaluation is in its phase."""
    waiting = {c.name: c for c in cases if c.created and not c.pool}
    deadline = time.monotonic() + 120
    ended: set[str] = set()
    while waiting and time.monotonic() < deadline:
        owners = _evaluations_of_jobs(batch_v1, namespace)
        for pod in core_v1.list_namespaced_pod(namespace, label_selector="assay.dev/evaluation").items:
            job = next((r.uid for r in pod.metadata.owner_references or [] if r.kind == "Job"), "")
            case = waiting.get(owners.get(job, ""))
            outcome = case.annotations.get(PREFIX + "pod-outcome") if case else None
            if case is None or outcome is None or pod.status.phase != "Running" or pod.metadata.name in ended:
                continue
            annotations = {
                OUTCOME_ANNOTATION: outcome,
                MESSAGE_ANNOTATION: case.annotations[PREFIX + "pod-message"],
            }
            if PREFIX + "pod-exit-code" in case.annotations:
                annotations[EXIT_CODE_ANNOTATION] = case.annotations[PREFIX + "pod-exit-code"]
            core_v1.patch_namespaced_pod(
                pod.metadata.name, namespace, {"metadata": {"annotations": annotations}}
            )
            ended.add(pod.metadata.name)
        for name, case in list(waiting.items()):
            status = _status(custom_objects, namespace, name)
            if status.get("phase") == case.expect:
                case.outcome = _ending(status)
                waiting.pop(name)
        time.sleep(0.5)
    for name, case in waiting.items():
        status = _status(custom_objects, namespace, name)
        case.outcome = f"accepted, {_ending(status)}"
        case.problems.append(f"expected phase {case.expect}, got {json.dumps(status)[:1500]}")


def _evaluations_of_jobs(batch_v1: client.BatchV1Api, namespace: str) -> dict[str, str]:
    """The Evaluation owning each Job of the namespace, by Job uid (names may not fit in a label)."""
    return {
        job.metadata.uid: ref.name
        for job in batch_v1.list_namespaced_job(namespace).items
        for ref in job.metadata.owner_references or []
        if ref.kind == "Evaluation"
    }


def _ending(status: dict[str, Any]) -> str:
    reasons = ",".join(
        f"{c['type']}={c['status']}/{c.get('reason', '')}" for c in status.get("conditions", [])
    )
    return f"phase {status.get('phase')} [{reasons}]: {(status.get('message') or '')[:160]}"


def _check(cases: list[Case], custom_objects: client.CustomObjectsApi, namespace: str) -> None:
    for case in cases:
        if case.expect == "rejected":
            _check_refusal(case)
            continue
        if not case.created:
            case.problems.append(f"refused, but must be accepted: {case.outcome[:600]}")
            continue
        if case.pool:
            case.outcome = "accepted"
        if not case.pool and not case.problems:
            _check_condition(case, _status_with_condition(custom_objects, namespace, case))
        _check_patches(case, custom_objects, namespace)


def _check_refusal(case: Case) -> None:
    """A case that admission must refuse: refused, naming the field, saying why, briefly."""
    if case.created:
        case.problems.append("accepted, but must be refused at admission")
        case.outcome = "accepted (wrongly)"
    elif not names_field(case.outcome, case.field):
        case.problems.append(f"refusal does not name the field {case.field!r}: {case.outcome[:600]}")
    elif case.says.lower() not in case.outcome.lower():
        case.problems.append(f"refusal does not say {case.says!r}: {case.outcome[:600]}")
    elif len(case.outcome) > LONGEST_CLEAR_MESSAGE:
        case.problems.append(f"refusal of {len(case.outcome)} characters is not a clear message")


def _status_with_condition(
    custom_objects: client.CustomObjectsApi, namespace: str, case: Case
) -> dict[str, Any]:
    """The case's status once it has the condition it expects, or as last seen after a minute: progress
    conditions (Running, Scheduled) are written paced, so they may trail the phase by many seconds."""
    type_, reason = case.condition

    def with_condition() -> dict[str, Any] | None:
        status = _status(custom_objects, namespace, case.name)
        conditions = status.get("conditions", [])
        return status if any(c["type"] == type_ and c.get("reason") == reason for c in conditions) else None

    try:
        return wait_until(with_condition, timeout=60, what=f"{case.name}: condition {type_}={reason}")
    except WaitTimeoutError:
        return _status(custom_objects, namespace, case.name)


def _check_condition(case: Case, status: dict[str, Any]) -> None:
    """An accepted case without a pool: the condition it expects, saying why."""
    type_, reason = case.condition
    found = next((c for c in status.get("conditions", []) if c["type"] == type_), None)
    if found is None or found.get("reason") != reason:
        case.problems.append(f"no condition {type_}={reason}: {json.dumps(status)[:1500]}")
    elif case.says.lower() not in found.get("message", "").lower():
        case.problems.append(f"condition {type_} does not say {case.says!r}: {found}")


def _check_patches(case: Case, custom_objects: client.CustomObjectsApi, namespace: str) -> None:
    """The case's patches, each accepted or refused (naming the field, saying why) as annotated."""
    for step in json.loads(case.annotations.get(PREFIX + "patches", "[]")):
        try:
            custom_objects.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, EVALUATION_PLURAL, case.name, step["patch"]
            )
            result = "accepted"
        except ApiException as exc:
            result = f"rejected: {refusal_text(exc)}"
        case.outcome += f"; patch {json.dumps(step['patch'])} {result}"
        says, field = step.get("says"), step.get("field", "")
        if says and (result == "accepted" or says.lower() not in result.lower()):
            case.problems.append(f"patch {step['patch']} must be refused saying {says!r}; {result}")
        elif says and not names_field(result, field):
            case.problems.append(f"patch {step['patch']} must be refused naming {field!r}; {result}")
        if not says and result != "accepted":
            case.problems.append(f"patch {step['patch']} must be accepted; {result}")


def _finish_healthy(core_v1: client.CoreV1Api, namespace: str) -> None:
    """Succeed the healthy evaluation's predict pods, then its evaluate pod with a summary."""
    for step, count, message in (("predict", 2, None), ("evaluate", 1, result_message(HEALTHY_SUMMARY))):
        selector = f"assay.dev/evaluation=healthy,assay.dev/step={step}"
        pods = wait_until(
            lambda: _running(core_v1, namespace, selector, count),  # noqa: B023
            timeout=60,
            what=f"the healthy evaluation's {step} pods",
        )
        for pod in pods:
            annotations = {OUTCOME_ANNOTATION: "succeed"}
            if message is not None:
                annotations[MESSAGE_ANNOTATION] = message
            core_v1.patch_namespaced_pod(
                pod.metadata.name, namespace, {"metadata": {"annotations": annotations}}
            )


def _running(core_v1: client.CoreV1Api, namespace: str, selector: str, count: int) -> list[client.V1Pod]:
    pods = core_v1.list_namespaced_pod(namespace, label_selector=selector).items
    running = [p for p in pods if p.status.phase == "Running"]
    return running if len(running) >= count else []
