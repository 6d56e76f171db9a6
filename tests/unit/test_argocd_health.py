"""The Argo CD health check (deploy/argocd/health.lua) on sample statuses, in Lua 5.1 like Argo CD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = ROOT / "deploy" / "argocd" / "health.lua"


def health(evaluation: dict[str, Any]) -> tuple[str, str]:
    """Run the script the way Argo CD does: a global `obj`, the script's return value a {status, message}."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(evaluation, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return result["status"], result["message"]


def evaluation(
    phase: str | None, *conditions: dict[str, str], generation: int = 1, **status: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "assay.dev/v1alpha1",
        "kind": "Evaluation",
        "metadata": {"name": "e", "namespace": "team-a", "generation": generation},
        "spec": {"pool": "a100"},
    }
    if phase is not None:
        body["status"] = {"phase": phase, "observedGeneration": 1, "conditions": list(conditions), **status}
    return body


def cond(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_no_status_yet_is_progressing() -> None:
    assert health(evaluation(None))[0] == "Progressing"


def test_a_spec_change_not_yet_observed_is_progressing() -> None:
    status, message = health(evaluation("Succeeded", generation=2))
    assert status == "Progressing"
    assert "generation 2" in message


def test_running_shows_progress() -> None:
    status, message = health(
        evaluation(
            "Running",
            cond("Running", "True", "TasksRunning", "3 of 4 tasks running"),
            taskCounts={"total": 5, "succeeded": 1, "running": 3, "pending": 1, "failed": 0},
        )
    )
    assert status == "Progressing"
    assert message == "TasksRunning: 3 of 4 tasks running (1/5 tasks done)"


def test_queued_is_progressing_with_the_reason() -> None:
    status, message = health(
        evaluation("Queued", cond("Queued", "True", "WaitingForQuota", "needs 4 nvidia.com/gpu, 2 free"))
    )
    assert (status, message) == ("Progressing", "WaitingForQuota: needs 4 nvidia.com/gpu, 2 free")


def test_succeeded_is_healthy() -> None:
    status, _ = health(
        evaluation("Succeeded", cond("Succeeded", "True", "AllTasksSucceeded", "accuracy 0.99"))
    )
    assert status == "Healthy"


def test_failed_is_degraded_naming_the_task() -> None:
    status, message = health(
        evaluation("Failed", cond("Failed", "True", "TaskFailed", "predict task 1 exited with code 12"))
    )
    assert status == "Degraded"
    assert message == "TaskFailed: predict task 1 exited with code 12"


def test_rejected_spec_is_degraded_whatever_the_phase() -> None:
    status, message = health(
        evaluation("Pending", cond("Accepted", "False", "UnknownPool", 'pool "h100" does not exist'))
    )
    assert status == "Degraded"
    assert "UnknownPool" in message


def test_expired_is_degraded() -> None:
    status, message = health(
        evaluation("Expired", cond("Expired", "True", "AutoReleased", "released after 3600 s"))
    )
    assert status == "Degraded"
    assert message.startswith("AutoReleased")


@pytest.mark.parametrize("phase", ["Suspended", "Cancelled"])
def test_stopped_on_request_is_suspended(phase: str) -> None:
    assert health(evaluation(phase))[0] == "Suspended"


def test_every_phase_of_the_api_has_a_known_health() -> None:
    conditions = pytest.importorskip("assay.api.conditions")

    for phase in conditions.Phase:
        assert health(evaluation(phase.value))[0] != "Unknown", phase


def test_an_unknown_phase_says_so() -> None:
    assert health(evaluation("Exploded")) == ("Unknown", "Unknown phase Exploded")


def test_the_argocd_configmap_patch_carries_the_script_verbatim() -> None:
    patch = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm-patch.yaml").read_text())
    assert patch["data"]["resource.customizations.health.assay.dev_Evaluation"] == HEALTH_LUA.read_text()
