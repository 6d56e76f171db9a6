"""Task pods meet the `restricted` Pod Security Standard, with and without GPUs and in debug mode."""

from __future__ import annotations

from typing import Any

import pytest
from test_render_jobs import POOL, evaluation

from assay.api import ResourcePool
from assay.contract import Step
from assay.render import RenderOptions, job_for

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"resources": {"nvidia.com/gpu": "2"}},
        {"resources": {"nvidia.com/gpu": "0"}},
        {"debug": {"enabled": True}},
    ],
)
def test_task_pods_are_restricted(spec: dict[str, Any]) -> None:
    job = job_for(evaluation(**spec), ResourcePool.model_validate(POOL), Step.PREDICT, RenderOptions())
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod and "hostPID" not in pod and "hostIPC" not in pod
    assert all("hostPath" not in v for v in pod.get("volumes", []))
    for container in pod["containers"]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert all(p["containerPort"] >= 1024 for p in container.get("ports", []))


def test_each_job_gets_its_own_security_context() -> None:
    pool = ResourcePool.model_validate(POOL)
    first = job_for(evaluation(), pool, Step.PREDICT, RenderOptions())
    first["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False
    second = job_for(evaluation(), pool, Step.PREDICT, RenderOptions())
    assert second["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_disruptions_do_not_use_up_the_retries() -> None:
    job = job_for(evaluation(), ResourcePool.model_validate(POOL), Step.PREDICT, RenderOptions())
    (rule,) = job["spec"]["podFailurePolicy"]["rules"]
    assert rule == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy needs it
