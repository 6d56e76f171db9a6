"""Assay installed for real (`make deploy`, hack/deploy.sh): `kubectl apply -k` of manifests/ with the
operator image built here, its two replicas as pods on the real node, the webhook called by the apiserver
through its Service (kube-proxy on the real node), and uninstalled (`make undeploy`: `kubectl delete -k`).

The installed operator watches every namespace, so the module installs once, runs its tests, and uninstalls;
the CRDs are applied again afterwards for the modules that follow. Times (deploy, leader hand-over) are
printed, never asserted beyond a generous bound.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from install import OPERATOR_NAMESPACE, Kubectl, checked, wait_until_namespace_is_gone_or_active
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families
from real_node import real_node_or_skip

from assay.api import EVALUATION_PLURAL, GROUP, POOL_PLURAL, VERSION
from assay.contract import result_message
from assay.controller.admission.webhooks import WEBHOOK_ID
from support import FakePods, wait_until
from support.cluster import REPO_ROOT

pytestmark = [pytest.mark.realnode, pytest.mark.kwok, pytest.mark.timeout(900)]

DEPLOY = REPO_ROOT / "hack" / "deploy.sh"
WEBHOOK_CONFIGURATION = "assay-validating-webhook"
OPERATOR_SELECTOR = "app.kubernetes.io/component=operator"
# The documented worst case is ~30 s (a killed leader's keep-alive expires); a busy 2-core machine gets room.
HANDOVER_LIMIT_S = 90
TIMEOUT = 90


def run_deploy(action: str, kube: Path) -> float:
    """hack/deploy.sh ACTION on the cluster under test; its duration in seconds."""
    if kube.resolve() != (REPO_ROOT / ".cluster" / "kubeconfig").resolve():
        pytest.skip("make deploy installs onto this checkout's local cluster only")
    started = time.monotonic()
    done = subprocess.run([str(DEPLOY), action], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"hack/deploy.sh {action} failed:\n{done.stdout}\n{done.stderr}"
    return time.monotonic() - started


def reapply_crds(kubectl: Kubectl) -> None:
    """The uninstall took the CRDs: put them back for the test modules that follow."""
    checked(kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO_ROOT / "crds")))
    checked(kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"))


@pytest.fixture(scope="module")
def installed(kube: Path, kubectl: Kubectl, core_v1: client.CoreV1Api) -> Iterator[float]:
    """Assay installed by `make deploy` (its duration), uninstalled afterwards."""
    real_node_or_skip(core_v1)
    wait_until_namespace_is_gone_or_active(kubectl)
    seconds = run_deploy("up", kube)
    print(f"make deploy: installed and rolled out in {seconds:.1f} s")
    try:
        yield seconds
    finally:
        if kubectl("get", "deployment", "-n", OPERATOR_NAMESPACE, "assay-operator").returncode == 0:
            run_deploy("down", kube)
            reapply_crds(kubectl)


def operator_pods(core_v1: client.CoreV1Api) -> list[client.V1Pod]:
    pods = core_v1.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def metric_total(text: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def evaluations_exported(kubectl: Kubectl, pod: str) -> float | None:
    """How many Evaluations a replica exports (only the acting one has any), read through the apiserver's pod
    proxy (straight to the pod's address); None if it does not answer."""
    answer = kubectl("get", "--raw", f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/{pod}:9090/proxy/metrics")
    return metric_total(answer.stdout, "assay_evaluations") if answer.returncode == 0 else None


def exported(kubectl: Kubectl, core_v1: client.CoreV1Api) -> dict[str, object]:
    """Each operator pod's readiness and the Evaluations it exports (shown when a wait fails)."""
    return {
        p.metadata.name: (ready(p), evaluations_exported(kubectl, p.metadata.name))
        for p in operator_pods(core_v1)
    }


def acting(kubectl: Kubectl, core_v1: client.CoreV1Api) -> list[str]:
    """The replicas that reconcile: only the acting one exports evaluation series. Readiness is not asked
    (the rollout test checks it): a busy leader may miss a readiness probe and still be the one acting."""
    return [
        p.metadata.name
        for p in operator_pods(core_v1)
        if (evaluations_exported(kubectl, p.metadata.name) or 0) > 0
    ]


@pytest.fixture(scope="module")
def cpu_pool(installed: float, custom_objects: client.CustomObjectsApi) -> Iterator[str]:
    """A pool of the fake CPU nodes (the task pods are fake; the operator is real)."""
    name = f"deploy-{secrets.token_hex(3)}"
    custom_objects.create_cluster_custom_object(
        GROUP,
        VERSION,
        POOL_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ResourcePool",
            "metadata": {"name": name},
            "spec": {
                "nodeSelector": {"assay.dev/pool-node": "cpu"},
                "resources": [
                    {"name": "cpu", "default": "1", "max": "8"},
                    {"name": "memory", "default": "1Gi", "max": "16Gi"},
                ],
            },
        },
    )
    yield name
    try:
        custom_objects.delete_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
    except ApiException as exc:
        if exc.status != 404:  # gone with the CRDs when the install went first
            raise


def evaluation(name: str, pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Evaluation",
        "metadata": {"name": name},
        "spec": {
            "pool": pool,
            "model": {"name": "m", "version": "v1", "uri": "file:///models/m"},
            "handler": "m:Model",
            "dataset": {"name": "d", "version": "v1", "uri": "file:///data/d"},
            "runtime": {"image": "registry.invalid/assay-runner:test"},
            "tasks": 2,
        },
    }


def jobs_of(batch_v1: client.BatchV1Api, namespace: str, name: str) -> list[str]:
    jobs = batch_v1.list_namespaced_job(namespace, label_selector=f"assay.dev/evaluation={name}").items
    return sorted(j.metadata.name for j in jobs)


def kill_container_process(pod: client.V1Pod) -> None:
    """SIGKILL the operator process of ``pod`` from the host (a crash: no clean hand-over)."""
    container_id = pod.status.container_statuses[0].container_id.split("://", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            in_container = container_id in (proc / "cgroup").read_text()
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if in_container and b"assay-operator" in command:
            os.kill(int(proc.name), signal.SIGKILL)
            return
    raise AssertionError(f"no assay-operator process of container {container_id} on this machine")


def webhook_unreachable(exc: ApiException) -> bool:
    """The apiserver could not call the webhook (not: the webhook refused the object)."""
    return exc.status == 500 and "failed calling webhook" in json.loads(exc.body or "{}").get("message", "")


def test_the_install_rolls_out_both_replicas_on_the_real_node(
    installed: float, kubectl: Kubectl, core_v1: client.CoreV1Api
) -> None:
    names = dict(
        line.split()
        for line in checked(
            subprocess.run(
                [str(REPO_ROOT / "hack" / "images.sh"), "names"], capture_output=True, text=True, check=False
            )
        ).splitlines()
    )
    deployment = json.loads(
        checked(kubectl("get", "deployment", "-n", OPERATOR_NAMESPACE, "assay-operator", "-o", "json"))
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == names["operator"]
    pods = operator_pods(core_v1)
    assert len(pods) == 2 and all(ready(p) for p in pods), [(p.metadata.name, p.status.phase) for p in pods]
    node = real_node_or_skip(core_v1)
    assert {p.spec.node_name for p in pods} == {node}
    webhook = json.loads(
        checked(kubectl("get", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "-o", "json"))
    )
    assert {w["failurePolicy"] for w in webhook["webhooks"]} == {"Fail"}
    secret = json.loads(
        checked(kubectl("get", "secret", "-n", OPERATOR_NAMESPACE, "assay-webhook-tls", "-o", "json"))
    )
    assert {w["clientConfig"]["caBundle"] for w in webhook["webhooks"]} == {secret["data"]["tls.crt"]}


def test_the_operator_image_runs_as_its_user_with_no_pip(
    installed: float, kubectl: Kubectl, core_v1: client.CoreV1Api
) -> None:
    pod = operator_pods(core_v1)[0].metadata.name
    probe = (
        "import importlib.util, os, sys; print(os.getuid(), os.getgid(), "
        "'%d.%d' % sys.version_info[:2], importlib.util.find_spec('pip') is None)"
    )
    out = checked(kubectl("exec", "-n", OPERATOR_NAMESPACE, pod, "--", "python", "-c", probe)).split()
    assert out == ["65532", "65532", "3.11", "True"]
    assert kubectl("exec", "-n", OPERATOR_NAMESPACE, pod, "--", "pip", "--version").returncode != 0


def test_exactly_one_replica_acts_and_an_evaluation_succeeds_through_it(
    installed: float,
    cpu_pool: str,
    namespace: str,
    kubectl: Kubectl,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    fake_pods: FakePods,
) -> None:
    custom_objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, EVALUATION_PLURAL, evaluation("one", cpu_pool)
    )
    for pod in fake_pods.wait_running(namespace, "assay.dev/evaluation=one,assay.dev/step=predict", count=2):
        fake_pods.succeed(namespace, pod.metadata.name)
    (evaluate,) = fake_pods.wait_running(namespace, "assay.dev/evaluation=one,assay.dev/step=evaluate")
    fake_pods.succeed(
        namespace, evaluate.metadata.name, message=result_message({"accuracy": 0.9}, records=10)
    )
    checked(
        kubectl(
            "wait", "-n", namespace, "--for=condition=Succeeded", f"--timeout={TIMEOUT}s", "evaluation/one"
        )
    )
    wait_until(
        lambda: len(acting(kubectl, core_v1)) == 1,
        timeout=TIMEOUT,
        what="one replica exporting evaluations",
        last_seen=lambda: exported(kubectl, core_v1),
    )
    peering = json.loads(checked(kubectl("get", "clusterkopfpeering", "assay", "-o", "json")))
    assert len([peer for peer in (peering.get("status") or {}).values() if peer]) == 2


def test_a_refused_evaluation_is_refused_by_the_webhook_through_its_service(
    installed: float, namespace: str, custom_objects: client.CustomObjectsApi
) -> None:
    with pytest.raises(ApiException) as refused:
        custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, evaluation("no-pool", "no-such-pool")
        )
    message = json.loads(refused.value.body)["message"]
    assert 'admission webhook "evaluations.validate.assay.dev" denied the request' in message, message
    assert "no-such-pool" in message


def forged_review(namespace: str) -> bytes:
    """An AdmissionReview as the apiserver would send it, from someone else."""
    request = {
        "uid": f"forged-{secrets.token_hex(4)}",
        "kind": {"group": GROUP, "version": VERSION, "kind": "Evaluation"},
        "resource": {"group": GROUP, "version": VERSION, "resource": EVALUATION_PLURAL},
        "operation": "CREATE",
        "namespace": namespace,
        "name": "forged",
        "object": {
            **evaluation("forged", "no-such-pool"),
            "metadata": {"name": "forged", "namespace": namespace},
        },
        "userInfo": {"username": "forger"},
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def post_review(pod_ip: str, body: bytes, client_certificate: tuple[Path, Path] | None) -> dict[str, Any]:
    """POST straight to a replica's webhook port (the real node's bridge: this machine reaches pod IPs)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = (
        False,
        ssl.CERT_NONE,
    )  # the caller is checked, not the server
    if client_certificate is not None:
        context.load_cert_chain(*map(str, client_certificate))
    request = urllib.request.Request(
        f"https://{pod_ip}:9443/{WEBHOOK_ID}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as reply:
        answer: dict[str, Any] = json.loads(reply.read())
        return answer


def test_the_webhook_answers_only_callers_with_the_apiservers_client_certificate(
    installed: float, namespace: str, core_v1: client.CoreV1Api
) -> None:
    """Direct to each replica, past the apiserver: no client certificate, no handshake; the certificate the
    apiserver presents (hack/kwok-cluster.sh) gets the answer, so the pod was reachable all along. Creations
    through the apiserver get the webhook's answer: the refused-Evaluation test above."""
    apiservers = REPO_ROOT / ".cluster" / "webhook-client"
    body = forged_review(namespace)
    for pod in operator_pods(core_v1):
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)) as refused:
            post_review(pod.status.pod_ip, body, None)
        print(f"{pod.metadata.name} ({pod.status.pod_ip}), no client certificate: {refused.value!r}")
        answer = post_review(pod.status.pod_ip, body, (apiservers / "client.crt", apiservers / "client.key"))
        assert answer["response"]["uid"] == json.loads(body)["request"]["uid"], answer
        assert answer["response"]["allowed"] is False and "no-such-pool" in str(answer["response"]), answer


def test_the_metrics_service_answers_through_its_cluster_ip(
    installed: float, core_v1: client.CoreV1Api
) -> None:
    """From this machine to the ClusterIP: kube-proxy's rules, not the apiserver's proxy."""
    service = core_v1.read_namespaced_service("assay-metrics", OPERATOR_NAMESPACE)
    url = f"http://{service.spec.cluster_ip}:9090/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    assert any(f.name.startswith("assay_") for f in text_string_to_metric_families(text)), text[:500]


def test_killing_the_leader_hands_over_and_loses_nothing(
    installed: float,
    cpu_pool: str,
    namespace: str,
    kubectl: Kubectl,
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
) -> None:
    def create(name: str) -> None:
        custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, EVALUATION_PLURAL, evaluation(name, cpu_pool)
        )

    create("before-kill")
    wait_until(
        lambda: jobs_of(batch_v1, namespace, "before-kill"), timeout=TIMEOUT, what="Jobs of before-kill"
    )
    wait_until(
        lambda: len(acting(kubectl, core_v1)) == 1,
        timeout=TIMEOUT,
        what="one acting replica",
        last_seen=lambda: exported(kubectl, core_v1),
    )
    (leader,) = acting(kubectl, core_v1)
    pod = core_v1.read_namespaced_pod(leader, OPERATOR_NAMESPACE)
    kill_container_process(pod)
    killed_at = time.monotonic()
    # Until the kubelet sees the dead container and its endpoint leaves the Service, kube-proxy may send the
    # apiserver's webhook call to it: the create is refused (failurePolicy Fail), never let through
    # unchecked. A client retries; the other replica serves it.
    refusals = 0

    def create_after_kill() -> bool:
        nonlocal refusals
        try:
            create("after-kill")
        except ApiException as exc:
            if not webhook_unreachable(exc):
                raise
            refusals += 1
            return False
        return True

    wait_until(
        create_after_kill, timeout=TIMEOUT, what="the webhook (through its Service) to accept after-kill"
    )
    accepted_s = time.monotonic() - killed_at
    print(
        f"after the kill: {refusals} create(s) refused (webhook unreachable), accepted at {accepted_s:.1f} s"
    )
    wait_until(
        lambda: jobs_of(batch_v1, namespace, "after-kill"),
        timeout=HANDOVER_LIMIT_S,
        what="another replica to take over and create the Jobs of after-kill",
    )
    handover_s = time.monotonic() - killed_at
    print(f"leader hand-over after SIGKILL of {leader}: {handover_s:.1f} s")
    for name in ("before-kill", "after-kill"):
        assert len(jobs_of(batch_v1, namespace, name)) == 1, jobs_of(batch_v1, namespace, name)
    # The killed container is restarted by the kubelet; both replicas Ready again.
    wait_until(
        lambda: len([p for p in operator_pods(core_v1) if ready(p)]) == 2,
        timeout=TIMEOUT,
        what="2 replicas Ready",
    )


def test_an_image_upgrade_rolls_without_refusing_a_valid_create(
    installed: float,
    kube: Path,
    cpu_pool: str,
    namespace: str,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
) -> None:
    """A rebuilt operator image (its package layer) applied by `make deploy`: the Deployment rolls one pod
    at a time (maxUnavailable 0, readiness, preStop), and every Evaluation created meanwhile is accepted."""
    before = {p.spec.containers[0].image for p in operator_pods(core_v1)}
    revision = secrets.token_hex(3)
    env = {**os.environ, "ASSAY_OPERATOR_IMAGE_REVISION": revision}
    upgrade = subprocess.Popen(
        [str(DEPLOY), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    created, refused = 0, []
    started = time.monotonic()
    while upgrade.poll() is None and time.monotonic() - started < 600:
        try:
            custom_objects.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                EVALUATION_PLURAL,
                evaluation(f"during-upgrade-{created}", cpu_pool),
            )
        except ApiException as exc:
            if not webhook_unreachable(exc):
                raise
            refused.append(json.loads(exc.body or "{}").get("message", ""))
        created += 1
        time.sleep(0.5)
    output, _ = upgrade.communicate(timeout=60)
    assert upgrade.returncode == 0, output
    images = {p.spec.containers[0].image for p in operator_pods(core_v1) if ready(p)}
    assert len(images) == 1 and images != before, (before, images)
    upgrade_s = time.monotonic() - started
    print(f"image upgrade: {upgrade_s:.1f} s, {created} creates during it, {len(refused)} refused")
    assert refused == [], refused


def test_uninstall_leaves_no_webhook_that_blocks_the_api(
    installed: float, kube: Path, kubectl: Kubectl, namespace: str, custom_objects: client.CustomObjectsApi
) -> None:
    """Last in the module: `make undeploy`; then Evaluations can be created again once the CRDs are back."""
    seconds = run_deploy("down", kube)
    print(f"make undeploy: {seconds:.1f} s")
    configurations = checked(kubectl("get", "validatingwebhookconfigurations", "-o", "name"))
    assert "assay" not in configurations, configurations
    reapply_crds(kubectl)
    created = custom_objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, EVALUATION_PLURAL, evaluation("after-uninstall", "no-such-pool")
    )
    assert created["metadata"]["name"] == "after-uninstall"
