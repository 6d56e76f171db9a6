"""The console component (manifests/components/console), read as data: `assay ui` read-only, as its own
view-only account, in a pod that meets `restricted`. Rendering it with kustomize (and the overlay that adds it
to the install) is in tests/integration/test_install.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from assay.cli.main import app
from assay.console.server import served_hosts

COMPONENT = Path(__file__).resolve().parents[2] / "manifests" / "components" / "console"


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(COMPONENT.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] != "Component":
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    spec: dict[str, Any] = objects()[("Deployment", "assay-console")]["spec"]["template"]["spec"]
    return spec


def test_the_component_lists_every_file() -> None:
    listed = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in COMPONENT.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_the_console_runs_read_only_on_all_addresses_with_a_token_from_a_secret(pod: dict[str, Any]) -> None:
    (container,) = pod["containers"]
    args = container["args"]
    assert container["command"] == ["assay"] and args[0] == "ui"
    assert {"--read-only", "--all-namespaces"} <= set(args)
    assert args[args.index("--address") + 1] == "0.0.0.0"
    token_file = Path(args[args.index("--token-file") + 1])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(token_file.parent)]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "assay-console-token" and mount["readOnly"] is True
    port = int(args[args.index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    # The kubelet's probe has no token and no loopback Host: an HTTP probe would always be refused.
    assert all("tcpSocket" in container[p] for p in ("livenessProbe", "readinessProbe"))
    service = objects()[("Service", "assay-console")]
    assert service["spec"]["ports"][0]["port"] == port  # port-forward 8765:8765 keeps Host localhost:8765
    assert f"localhost:{port}" in served_hosts(port)


def test_the_console_pod_meets_restricted_and_runs_as_its_own_account(pod: dict[str, Any]) -> None:
    assert pod["serviceAccountName"] == "assay-console"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_the_console_account_may_only_read() -> None:
    role = objects()[("ClusterRole", "assay-console")]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {verb for _, _, verb in granted} <= {"get", "list", "watch"}
    assert {(g, r) for g, r, _ in granted} == {
        ("assay.dev", "evaluations"),
        ("assay.dev", "resourcepools"),
        ("", "pods"),
        ("", "pods/log"),
    }
    binding = objects()[("ClusterRoleBinding", "assay-console")]
    assert binding["roleRef"]["name"] == "assay-console"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "assay-console", "namespace": "assay-system"}
    ]


def test_a_token_file_that_is_short_or_missing_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "token"
    short.write_text("abc\n")
    result = CliRunner().invoke(app, ["ui", "--token-file", str(short)])
    assert result.exit_code == 1 and "at least 16 characters" in result.stderr
    missing = CliRunner().invoke(app, ["ui", "--token-file", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "cannot read --token-file" in missing.stderr


def test_extra_hosts_are_answered_besides_the_loopback_names() -> None:
    assert served_hosts(8765, ["console.example:443"]) == {
        "127.0.0.1:8765",
        "localhost:8765",
        "console.example:443",
    }
