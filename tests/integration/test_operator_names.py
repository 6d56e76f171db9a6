"""Any valid Evaluation name runs (long, dotted, digit-leading), and a create the apiserver refuses for a
reason admission does not check fails the Evaluation clearly and frees its pool's quota.

Pods and Jobs are found here through their owner references (pod → Job → Evaluation uid), not through the
operator's labels, so the tests do not depend on how the operator shortens them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client
from operators import OperatorProcess
from test_operator import TIMEOUT, Evaluations, condition, evaluations, make_pool, operator  # noqa: F401

from assay.client import Client
from assay.contract import result_message
from support import FakePods, wait_until

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
SUMMARY = {"accuracy": 0.5}


def named(stem: str, length: int) -> str:
    """A valid Evaluation name of exactly ``length`` characters starting with ``stem``."""
    name = (stem + "-" + "x" * length)[:length]
    assert len(name) == length and name[-1].isalnum()
    return name


# (name, tasks, debug): every shape that broke a generated name before, with one task and with two.
UNUSUAL = [
    ("llama-3-8b-instruct-on-mmlu-5shot-2026-12-02-run-3-v2", 1, False),  # 53
    (named("n53", 53), 2, False),  # <name>-predict-1 fits, <name>-evaluate-0 does not
    (named("n54", 54), 2, False),
    (named("n56", 56), 1, True),
    (named("n63", 63), 2, True),
    (named("n64", 64), 1, False),
    (named("n200", 200), 2, False),
    (".".join([named("d253", 63)] + ["y" * 63] * 2 + ["z" * 61]), 2, True),  # 253, dotted
    (named("n253", 253), 1, False),
    ("run.v2.mmlu", 1, True),
    ("3rd-run", 2, True),
    ("7." + "q" * 70, 1, False),
]


def jobs_of(batch_v1: client.BatchV1Api, namespace: str, uid: str) -> list[client.V1Job]:
    return [
        job
        for job in batch_v1.list_namespaced_job(namespace).items
        if any(ref.uid == uid for ref in job.metadata.owner_references or [])
    ]


def test_long_dotted_and_digit_leading_names_run_to_succeeded(
    operator: OperatorProcess,  # noqa: F811
    make_pool: Callable[..., str],  # noqa: F811
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    core_v1: client.CoreV1Api,
    kube: Path,
    namespace: str,
) -> None:
    assert sorted(len(n) for n, _, _ in UNUSUAL)[-1] == 253
    pool = make_pool()
    uids = {}
    for name, tasks, debug in UNUSUAL:
        extra: dict[str, Any] = {"debug": {"enabled": True}} if debug else {}
        uids[name] = evaluations.create(name, pool, tasks=tasks, **extra)["metadata"]["uid"]
    evaluation_of_job = {}  # job uid -> evaluation name
    finished: set[str] = set()

    def drive() -> bool:
        """Succeed every running task pod (the final step with a summary); True once all succeeded."""
        for name, uid in uids.items():
            for job in jobs_of(batch_v1, namespace, uid):
                evaluation_of_job[job.metadata.uid] = name
        for pod in core_v1.list_namespaced_pod(namespace).items:
            owners = [evaluation_of_job.get(r.uid) for r in pod.metadata.owner_references or []]
            if pod.status.phase != "Running" or pod.metadata.name in finished or not any(owners):
                continue
            final = pod.metadata.labels.get("assay.dev/step") != "predict"
            fake_pods.succeed(
                namespace, pod.metadata.name, message=result_message(SUMMARY) if final else None
            )
            finished.add(pod.metadata.name)
        return all(evaluations.status(name).get("phase") == "Succeeded" for name in uids)

    wait_until(
        drive,
        timeout=120,
        what="every unusually named evaluation to succeed",
        last_seen=lambda: {n[:20]: evaluations.status(n).get("phase") for n in uids},
    )
    with Client(kube, namespace=namespace) as sdk:
        for name, tasks, debug in UNUSUAL:
            status = evaluations.status(name)
            assert status["results"]["summary"] == SUMMARY, name
            jobs = jobs_of(batch_v1, namespace, uids[name])
            assert len(jobs) == (2 if tasks > 1 else 1), name
            for job in jobs:
                hostname = f"{job.metadata.name}-{job.spec.completions - 1}"
                assert len(hostname) <= 63 and DNS_LABEL.fullmatch(hostname), hostname
            if debug:
                service = status["debug"]["service"]
                assert len(service) <= 63 and SERVICE_NAME.fullmatch(service), service
                assert core_v1.read_namespaced_service(service, namespace).metadata.owner_references
                assert core_v1.read_namespaced_secret(status["debug"]["passwordSecret"], namespace)
            # The SDK (and the CLI on it) finds the task pods of the name as the operator labelled them.
            attempts = sdk.attempts(name)
            assert len(attempts) == (tasks + 1 if tasks > 1 else 1), (name, attempts)


def test_a_job_the_apiserver_refuses_fails_the_evaluation_and_frees_the_quota(
    assay_crds: None,
    kube: Path,
    tmp_path: Path,
    namespace: str,
    second_namespace: str,
    make_pool: Callable[..., str],  # noqa: F811
    fake_pods: FakePods,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
) -> None:
    # A ResourceQuota admitting no Job: the apiserver refuses the Job, Assay's admission cannot know.
    core_v1.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="no-jobs"),
            spec=client.V1ResourceQuotaSpec(hard={"count/jobs.batch": "0"}),
        ),
    )
    wait_until(
        lambda: (
            (
                core_v1.read_namespaced_resource_quota("no-jobs", namespace).status
                or client.V1ResourceQuotaStatus()
            ).hard
        ),
        timeout=TIMEOUT,
        what="the ResourceQuota's status",
    )
    operator_process = OperatorProcess.start(
        "refused", kubeconfig=kube, namespaces=[namespace, second_namespace], log_dir=tmp_path
    )
    try:
        wait_until(
            lambda: "Assay controller started" in operator_process.log() or not operator_process.alive(),
            timeout=TIMEOUT,
            what="the operator to start",
        )
        pool = make_pool(quota={"cpu": "1"})  # room for one task of 1 cpu
        refused, waiting = (
            Evaluations(custom_objects, namespace),
            Evaluations(custom_objects, second_namespace),
        )
        refused.create("refused", pool, tasks=1, resources={"cpu": "1"})
        status = refused.wait_phase("refused", "Failed")
        failed = condition(status, "Failed")
        assert failed["reason"] == "CreateRefused", status
        assert "refused-evaluate" in failed["message"] and "exceeded quota: no-jobs" in failed["message"], (
            failed
        )

        def events() -> list[tuple[str | None, str | None]]:
            found = core_v1.list_namespaced_event(namespace, field_selector="involvedObject.name=refused")
            return [(e.type, e.reason) for e in found.items]

        wait_until(
            lambda: ("Warning", "CreateRefused") in events(),
            timeout=TIMEOUT,
            what="a CreateRefused event",
            last_seen=events,
        )
        # It was admitted to the whole quota; that is free again: an Evaluation of another namespace runs.
        behind = f"behind-{secrets.token_hex(2)}"
        waiting.create(behind, pool, tasks=1, resources={"cpu": "1"})
        waiting.wait_phase(behind, "Running")
        fake_pods.wait_running(second_namespace)
        assert operator_process.alive()
        assert refused.status("refused")["phase"] == "Failed"  # and it stays so
    finally:
        operator_process.stop()
        print(operator_process.log()[-6000:])
