"""The test cluster itself: fake GPU nodes, scheduling, fake-pod control, Job semantics, GC and RBAC.

Each test would fail if the harness were broken (a node shape, a taint, a stage, the controller-manager,
authorization). Pools are the fake nodes of hack/kwok/nodes.yaml.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml
from kubernetes import client

from support import FakePods, terminated_state, wait_until
from support.cluster import REPO_ROOT

A100 = {"gpu.example.com/type": "a100-80g"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
IMAGE = "registry.invalid/assay-task:test"  # never pulled: kwok fakes the containers


def pod_spec(
    *,
    gpus: int = 0,
    node_selector: dict[str, str] | None = None,
    tolerate_gpu_taint: bool = False,
) -> dict[str, Any]:
    resources = {"cpu": "1", "memory": "1Gi"}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {"name": "task", "image": IMAGE, "resources": {"requests": resources, "limits": resources}}
        ],
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerate_gpu_taint:
        spec["tolerations"] = [GPU_TOLERATION]
    return spec


def create_pod(core_v1: client.CoreV1Api, namespace: str, name: str, spec: dict[str, Any]) -> None:
    core_v1.create_namespaced_pod(
        namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    )


def create_job(
    batch_v1: client.BatchV1Api, namespace: str, name: str, spec: dict[str, Any], **meta: Any
) -> None:
    batch_v1.create_namespaced_job(
        namespace, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, **meta}, "spec": spec}
    )


def job_condition(
    batch_v1: client.BatchV1Api, namespace: str, name: str, kind: str
) -> client.V1JobCondition | None:
    job = batch_v1.read_namespaced_job(name, namespace)
    for condition in job.status.conditions or []:
        if condition.type == kind and condition.status == "True":
            return condition
    return None


def wait_job_condition(
    batch_v1: client.BatchV1Api, namespace: str, name: str, kind: str, timeout: float = 60
) -> client.V1JobCondition:
    return wait_until(
        lambda: job_condition(batch_v1, namespace, name, kind),
        timeout=timeout,
        what=f"Job {namespace}/{name} condition {kind}",
        last_seen=lambda: batch_v1.read_namespaced_job(name, namespace).status,
    )


@pytest.mark.kwok
def test_fake_nodes_have_the_pool_shapes(core_v1: client.CoreV1Api) -> None:
    nodes = core_v1.list_node(label_selector="type=kwok").items
    by_pool: dict[str, list[client.V1Node]] = {}
    for node in nodes:
        by_pool.setdefault(node.metadata.labels["assay.dev/pool-node"], []).append(node)
    assert {pool: len(members) for pool, members in by_pool.items()} == {"a100": 4, "t4": 2, "cpu": 2}
    gpu_taint = ("nvidia.com/gpu", "present", "NoSchedule")
    for pool, gpus in (("a100", "8"), ("t4", "4")):
        for node in by_pool[pool]:
            assert node.status.allocatable["nvidia.com/gpu"] == gpus
            assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [gpu_taint]
    for node in by_pool["cpu"]:
        assert "nvidia.com/gpu" not in node.status.allocatable
        assert not node.spec.taints
    ready = [c.status for n in nodes for c in n.status.conditions if c.type == "Ready"]
    assert ready == ["True"] * len(nodes)


def test_gpu_job_on_a100_completes_when_annotated(
    namespace: str, batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, fake_pods: FakePods
) -> None:
    spec = {
        "backoffLimit": 0,
        "template": {"spec": pod_spec(gpus=1, node_selector=A100, tolerate_gpu_taint=True)},
    }
    create_job(batch_v1, namespace, "gpu", spec)

    (pod,) = fake_pods.wait_running(namespace, "job-name=gpu")
    node = core_v1.read_node(pod.spec.node_name)
    assert node.metadata.labels["assay.dev/pool-node"] == "a100"
    assert job_condition(batch_v1, namespace, "gpu", "Complete") is None  # runs until told otherwise
    # Longer than the 1 s after which the benchmarks' auto-complete stage would end a pod it wrongly picked.
    time.sleep(2)
    assert fake_pods.get(namespace, pod.metadata.name).status.phase == "Running"

    fake_pods.succeed(namespace, pod.metadata.name)
    wait_job_condition(batch_v1, namespace, "gpu", "Complete")
    finished = fake_pods.get(namespace, pod.metadata.name)
    assert finished.status.phase == "Succeeded"
    terminated = terminated_state(finished, "task")
    assert terminated is not None
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert batch_v1.read_namespaced_job("gpu", namespace).status.succeeded == 1


def test_gpu_pod_without_toleration_stays_pending(
    namespace: str, core_v1: client.CoreV1Api, fake_pods: FakePods
) -> None:
    create_pod(core_v1, namespace, "no-toleration", pod_spec(gpus=1, node_selector=A100))

    message = fake_pods.wait_unschedulable(namespace, "no-toleration")
    # The four a100 nodes match the selector but are tainted (the scheduler does not name the taint).
    assert "untolerated taint" in message, message
    pod = fake_pods.get(namespace, "no-toleration")
    assert (pod.status.phase, pod.spec.node_name) == ("Pending", None)


def test_pod_asking_for_nine_gpus_stays_pending(
    namespace: str, core_v1: client.CoreV1Api, fake_pods: FakePods
) -> None:
    create_pod(core_v1, namespace, "nine-gpus", pod_spec(gpus=9, tolerate_gpu_taint=True))

    message = fake_pods.wait_unschedulable(namespace, "nine-gpus")
    assert "Insufficient nvidia.com/gpu" in message, message
    assert fake_pods.get(namespace, "nine-gpus").status.phase == "Pending"


def test_failed_pod_has_exit_code_and_termination_message(
    namespace: str, core_v1: client.CoreV1Api, fake_pods: FakePods
) -> None:
    # A message like the runner's: JSON with quotes, a newline and non-ASCII text must arrive unchanged.
    message = json.dumps(
        {"reason": "HandlerFailed", "message": 'bad "shape"\nin café.csv'}, ensure_ascii=False
    )
    create_pod(core_v1, namespace, "failing", pod_spec())
    fake_pods.wait_running(namespace)

    fake_pods.fail(namespace, "failing", exit_code=12, message=message)
    pod = fake_pods.wait_phase(namespace, "failing", ["Failed", "Succeeded"])
    assert pod.status.phase == "Failed"
    terminated = terminated_state(pod, "task")
    assert terminated is not None
    assert (terminated.exit_code, terminated.reason, terminated.message) == (12, "Error", message)


def test_indexed_job_retries_a_failed_index(
    namespace: str, batch_v1: client.BatchV1Api, fake_pods: FakePods
) -> None:
    spec = {
        "completionMode": "Indexed",
        "completions": 2,
        "parallelism": 2,
        "backoffLimitPerIndex": 1,
        "template": {"spec": pod_spec()},
    }
    create_job(batch_v1, namespace, "indexed", spec)
    index_1 = "job-name=indexed,batch.kubernetes.io/job-completion-index=1"
    index_0 = "job-name=indexed,batch.kubernetes.io/job-completion-index=0"

    (first,) = fake_pods.wait_running(namespace, index_1)
    fake_pods.fail(namespace, first.metadata.name, exit_code=3)
    # The retry is a new pod for the same index.
    retry = wait_until(
        lambda: [
            p for p in fake_pods.wait_running(namespace, index_1) if p.metadata.name != first.metadata.name
        ],
        timeout=60,
        what="a second pod for index 1",
    )[0]
    assert retry.metadata.labels["batch.kubernetes.io/job-completion-index"] == "1"

    # The second failure exhausts index 1; index 0 succeeds; the Job fails naming index 1.
    fake_pods.fail(namespace, retry.metadata.name, exit_code=3)
    fake_pods.finish_all(namespace, index_0, "succeed")
    condition = wait_job_condition(batch_v1, namespace, "indexed", "Failed")
    assert condition.reason == "FailedIndexes"
    status = batch_v1.read_namespaced_job("indexed", namespace).status
    assert (status.failed_indexes, status.completed_indexes, status.failed) == ("1", "0", 2)


def test_deleting_the_owner_cascades_to_job_and_pods(
    namespace: str, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api, fake_pods: FakePods
) -> None:
    owner = core_v1.create_namespaced_config_map(
        namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}
    )
    owner_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    create_job(
        batch_v1,
        namespace,
        "owned",
        {"parallelism": 2, "completions": 2, "template": {"spec": pod_spec()}},
        ownerReferences=[owner_ref],
    )
    fake_pods.wait_running(namespace, "job-name=owned", count=2)

    core_v1.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    wait_until(
        lambda: not batch_v1.list_namespaced_job(namespace).items and not fake_pods.list(namespace),
        timeout=60,
        what="the garbage collector to delete the Job and its pods",
        last_seen=lambda: (
            len(batch_v1.list_namespaced_job(namespace).items),
            len(fake_pods.list(namespace)),
        ),
    )


def test_deleted_pod_goes_away(namespace: str, core_v1: client.CoreV1Api, fake_pods: FakePods) -> None:
    create_pod(core_v1, namespace, "doomed", pod_spec())
    fake_pods.wait_running(namespace)
    core_v1.delete_namespaced_pod("doomed", namespace)
    wait_until(lambda: not fake_pods.list(namespace), timeout=30, what="the deleted pod to disappear")


def test_deleted_job_pod_is_counted_failed_and_replaced(
    namespace: str, batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, fake_pods: FakePods
) -> None:
    # With a podFailurePolicy the Job controller judges a deleted pod only once it is terminal (as a kubelet
    # makes it); a fake pod deleted while "Running" stayed Terminating and was never replaced (seen).
    exit_42_fails_the_job = {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}
    spec = {
        "backoffLimit": 3,
        "podFailurePolicy": {"rules": [exit_42_fails_the_job]},
        "template": {"spec": pod_spec()},
    }
    create_job(batch_v1, namespace, "replaced", spec)
    (first,) = fake_pods.wait_running(namespace, "job-name=replaced")
    core_v1.delete_namespaced_pod(first.metadata.name, namespace)

    wait_until(
        lambda: first.metadata.name not in {p.metadata.name for p in fake_pods.list(namespace)},
        timeout=30,
        what=f"the deleted pod {first.metadata.name} to disappear",
        last_seen=lambda: [
            (p.metadata.name, p.status.phase, p.metadata.finalizers) for p in fake_pods.list(namespace)
        ],
    )
    (replacement,) = fake_pods.wait_running(namespace, "job-name=replaced")
    assert replacement.metadata.name != first.metadata.name
    wait_until(
        lambda: batch_v1.read_namespaced_job("replaced", namespace).status.failed == 1,
        timeout=30,
        what="the Job to count the deleted pod as failed",
    )


def test_auto_complete_label_succeeds_by_itself(
    namespace: str, core_v1: client.CoreV1Api, fake_pods: FakePods
) -> None:
    core_v1.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "auto",
                "labels": {"kwok.assay.dev/auto-complete": "true"},
                "annotations": {"kwok.assay.dev/auto-complete-after": "300ms"},
            },
            "spec": pod_spec(),
        },
    )
    pod = fake_pods.wait_phase(namespace, "auto", ["Succeeded", "Failed"], timeout=30)
    assert pod.status.phase == "Succeeded"
    terminated = terminated_state(pod)
    assert terminated is not None and terminated.exit_code == 0


def test_service_account_without_rbac_is_refused(
    namespace: str,
    core_v1: client.CoreV1Api,
    rbac_v1: client.RbacAuthorizationV1Api,
    api_client: client.ApiClient,
) -> None:
    core_v1.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = core_v1.create_namespaced_service_account_token(
        "nobody", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    as_nobody = client.Configuration()
    as_nobody.host = api_client.configuration.host
    as_nobody.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    as_nobody.verify_ssl = api_client.configuration.verify_ssl
    as_nobody.api_key = {"authorization": f"Bearer {token}"}

    with client.ApiClient(as_nobody) as nobody_client:
        nobody = client.CoreV1Api(nobody_client)
        with pytest.raises(client.ApiException) as refused:
            nobody.list_namespaced_pod(namespace)
        assert refused.value.status == 403

        # The same token works once RBAC grants it: the refusal came from authorization, not a broken token.
        rbac_v1.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
            },
        )
        rbac_v1.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "nobody-reads-pods"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
            },
        )

        def allowed() -> bool:
            try:
                nobody.list_namespaced_pod(namespace)
                return True
            except client.ApiException as err:
                if err.status != 403:
                    raise
                return False

        wait_until(allowed, timeout=20, what="the RoleBinding to take effect")
        with pytest.raises(client.ApiException) as still_refused:
            nobody.list_namespaced_secret(namespace)
        assert still_refused.value.status == 403


def test_cluster_wide_auto_complete_stage_completes_job_pods(
    namespace: str,
    batch_v1: client.BatchV1Api,
    custom_objects: client.CustomObjectsApi,
    fake_pods: FakePods,
) -> None:
    # hack/kwok/optional/auto-complete-jobs.yaml (make cluster-up KWOK_AUTO_COMPLETE=...), limited to this
    # test's namespace so that other sessions on the same cluster are unaffected.
    stage = yaml.safe_load((REPO_ROOT / "hack/kwok/optional/auto-complete-jobs.yaml").read_text())
    stage["metadata"]["name"] = f"test-{namespace}"
    stage["spec"]["selector"]["matchExpressions"].append(
        {"key": ".metadata.namespace", "operator": "In", "values": [namespace]}
    )
    custom_objects.create_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "stages", stage)
    try:
        create_job(
            batch_v1,
            namespace,
            "auto",
            {"completions": 2, "parallelism": 2, "template": {"spec": pod_spec()}},
        )
        wait_job_condition(batch_v1, namespace, "auto", "Complete", timeout=30)
        assert batch_v1.read_namespaced_job("auto", namespace).status.succeeded == 2
    finally:
        custom_objects.delete_cluster_custom_object(
            "kwok.x-k8s.io", "v1alpha1", "stages", stage["metadata"]["name"]
        )
