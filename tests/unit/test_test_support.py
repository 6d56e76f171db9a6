"""The pure parts of tests/support (the integration harness), checked without a cluster."""

from __future__ import annotations

import pytest
from kubernetes import client

from support import WaitTimeoutError, outcome_annotations, scheduling_message, terminated_state, wait_until
from support.ci import missing


def test_outcome_annotations_carry_exit_code_message_and_reason() -> None:
    assert outcome_annotations("fail", exit_code=12, message='{"a": 1}', reason="OOMKilled") == {
        "kwok.assay.dev/outcome": "fail",
        "kwok.assay.dev/exit-code": "12",
        "kwok.assay.dev/message": '{"a": 1}',
        "kwok.assay.dev/reason": "OOMKilled",
    }
    assert outcome_annotations("succeed") == {"kwok.assay.dev/outcome": "succeed"}


def test_outcome_annotations_reject_unknown_outcomes() -> None:
    with pytest.raises(ValueError, match="succeed' or 'fail"):
        outcome_annotations("crash")


def _pod(statuses: list[client.V1ContainerStatus], conditions: list[client.V1PodCondition]) -> client.V1Pod:
    return client.V1Pod(status=client.V1PodStatus(container_statuses=statuses, conditions=conditions))


def test_terminated_state_picks_the_named_container() -> None:
    done = client.V1ContainerStateTerminated(exit_code=3, message="m")
    pod = _pod(
        [
            client.V1ContainerStatus(
                name="sidecar",
                image="i",
                image_id="",
                ready=True,
                restart_count=0,
                state=client.V1ContainerState(),
            ),
            client.V1ContainerStatus(
                name="task",
                image="i",
                image_id="",
                ready=False,
                restart_count=0,
                state=client.V1ContainerState(terminated=done),
            ),
        ],
        [],
    )
    assert terminated_state(pod, "task") is done
    assert terminated_state(pod) is None  # the first container is still running
    assert terminated_state(_pod([], [])) is None


def test_scheduling_message_reads_the_pod_scheduled_condition() -> None:
    unschedulable = client.V1PodCondition(
        type="PodScheduled", status="False", reason="Unschedulable", message="0/8 nodes are available"
    )
    assert scheduling_message(_pod([], [unschedulable])) == "Unschedulable: 0/8 nodes are available"
    scheduled = client.V1PodCondition(type="PodScheduled", status="True")
    assert scheduling_message(_pod([], [scheduled])) is None


def test_wait_until_returns_the_first_truthy_result() -> None:
    results = iter([None, [], ["pod"]])
    assert wait_until(lambda: next(results), timeout=5, what="a pod", interval=0) == ["pod"]


def test_wait_until_says_what_never_happened() -> None:
    with pytest.raises(WaitTimeoutError, match=r"waiting for the pod to run; last seen: Pending"):
        wait_until(
            lambda: None, timeout=0.05, what="the pod to run", interval=0.01, last_seen=lambda: "Pending"
        )


def test_something_missing_fails_the_test_in_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI runs this test, but no kubelet"):
        missing("no kubelet", environ={"CI": "true"})


def test_something_missing_skips_the_test_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="no kubelet"):
        missing("no kubelet", environ={"CI": "false"})
