"""The assay command line without a cluster: help texts, completion, and one-line errors with exit codes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import typer
import typer.main
from rich.text import Text
from typer.testing import CliRunner

from assay.cli.main import app
from assay.cli.options import KubectlFlags, print_objects, reports_errors, takes_kubectl_flags
from assay.cli.views import ListFormat
from assay.errors import ClusterUnreachable, Invalid

runner = CliRunner()

COMMANDS = [
    "list",
    "get",
    "tasks",
    "logs",
    "compare",
    "create",
    "cancel",
    "suspend",
    "resume",
    "wait",
    "pools",
    "budgets",
    "ui",
]


def test_every_command_is_registered():
    assert set(COMMANDS) <= set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _parses(tmp_path: Path, args: list[str]) -> bool:
    """Whether click accepts ``args``: then the command runs and stops at the missing kubeconfig (exit 5);
    an unknown flag or a value outside an option's choices is a usage error (exit 2)."""
    result = runner.invoke(app, [*args, "--kubeconfig", str(tmp_path / "absent")])
    assert result.exit_code in (ClusterUnreachable.exit_code, 2), result.output
    return result.exit_code == ClusterUnreachable.exit_code


# Arguments each command needs before its options are looked at.
REQUIRED_ARGS = {"get": ["x"], "tasks": ["x"], "logs": ["x"], "compare": ["a", "b"], "cancel": ["x"],
                 "suspend": ["x"], "resume": ["x"], "wait": ["x"]}  # fmt: skip


def _args_of(command: str, tmp_path: Path) -> list[str]:
    if command == "create":
        manifest = tmp_path / "evaluation.yaml"
        manifest.write_text("kind: Evaluation\n")
        return [command, "-f", str(manifest)]
    return [command, *REQUIRED_ARGS.get(command, [])]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_has_an_example_and_kubectl_flags(command: str, tmp_path: Path):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"Example: assay {command}" in result.output
    assert _parses(tmp_path, [*_args_of(command, tmp_path), "--context", "c"])
    assert _parses(
        tmp_path, [*_args_of(command, tmp_path), "--as", "u", "--as-group", "g", "--as-group", "h"]
    )
    assert not _parses(tmp_path, [*_args_of(command, tmp_path), "--no-such-flag"])


@pytest.mark.parametrize("command", ["list", "get", "tasks", "create"])
def test_listing_commands_offer_kubectls_output_formats(command: str, tmp_path: Path):
    for fmt in ("json", "yaml", "wide", "name"):
        assert _parses(tmp_path, [*_args_of(command, tmp_path), "-o", fmt]), fmt
    assert not _parses(tmp_path, [*_args_of(command, tmp_path), "-o", "nam"])


def test_list_has_namespace_all_namespaces_and_selector_flags(tmp_path: Path):
    for flags in (["-n", "x"], ["--namespace", "x"], ["-A"], ["--all-namespaces"], ["-l", "a=b"],
                  ["--selector", "a=b"], ["--pool", "a100"], ["--phase", "Running"]):  # fmt: skip
        assert _parses(tmp_path, ["list", *flags]), flags


def test_compare_offers_table_json_csv_markdown(tmp_path: Path):
    for fmt in ("table", "json", "csv", "markdown"):
        assert _parses(tmp_path, ["compare", "a", "b", "-o", fmt]), fmt
    assert not _parses(tmp_path, ["compare", "a", "b", "-o", "mark"])
    assert _parses(tmp_path, ["compare", "a", "b", "--baseline", "a", "--only-diff", "--columns", "accuracy"])


def test_shell_completion_is_available():
    result = runner.invoke(app, ["--show-completion", "bash"], env={"SHELL": "/bin/bash"})
    assert result.exit_code == 0
    registrations = [line.split() for line in result.output.splitlines() if line.startswith("complete ")]
    assert registrations and registrations[0][-1] == "assay"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("assay ")


def _kubeconfig(tmp_path: Path) -> Path:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "config"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["get", "x"],
        ["tasks", "x"],
        ["logs", "x"],
        ["compare", "a", "b"],
        ["cancel", "x"],
        ["suspend", "x"],
        ["resume", "x"],
        ["wait", "x", "--timeout", "1"],
        ["pools"],
        ["budgets"],
    ],
)
def test_an_unreachable_cluster_is_one_line_and_its_exit_code(tmp_path: Path, args: list[str]):
    result = runner.invoke(app, [*args, "--kubeconfig", str(_kubeconfig(tmp_path))])
    assert result.exit_code == ClusterUnreachable.exit_code
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot reach the Kubernetes API at http://127.0.0.1:")


def test_a_missing_kubeconfig_is_one_line(tmp_path: Path):
    result = runner.invoke(app, ["list", "--kubeconfig", str(tmp_path / "nope")])
    assert result.exit_code == ClusterUnreachable.exit_code
    assert (
        result.stderr.strip() == f"error: kubeconfig {tmp_path / 'nope'} does not exist: check --kubeconfig"
    )


def test_create_from_a_broken_file_fails_before_reaching_the_cluster(tmp_path: Path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("spec: [unclosed\n")
    result = runner.invoke(app, ["create", "-f", str(manifest), "--kubeconfig", str(_kubeconfig(tmp_path))])
    assert result.exit_code == Invalid.exit_code
    assert result.stderr.startswith(f"error: {manifest} is not valid YAML")


@pytest.mark.parametrize("args", [["list"], ["get", "x"], ["pools"]])
def test_impersonating_groups_without_a_user_is_refused_as_kubectl_does(tmp_path: Path, args: list[str]):
    kubeconfig = str(_kubeconfig(tmp_path))
    result = runner.invoke(app, [*args, "--as-group", "team-a", "--kubeconfig", kubeconfig])
    assert result.exit_code == Invalid.exit_code
    assert result.stderr.strip() == "error: --as-group team-a needs --as: impersonate a user to give groups"


def test_bad_usage_is_clicks_exit_code_2():
    result = runner.invoke(app, ["compare", "a", "-o", "pdf"])
    assert result.exit_code == 2


def test_a_multi_line_error_is_printed_on_one_line():
    @reports_errors
    def failing() -> None:
        raise Invalid("spec.tasks: too small\nspec.pool: required")

    probe = typer.Typer()
    probe.command()(failing)
    result = runner.invoke(probe, [])
    assert result.exit_code == Invalid.exit_code
    assert result.stderr == "error: spec.tasks: too small; spec.pool: required\n"


def test_kubectls_flags_reach_a_command_as_one_object():
    seen: list[tuple[str, KubectlFlags]] = []

    @takes_kubectl_flags
    def command(name: str, *, kubectl: KubectlFlags) -> None:
        seen.append((name, kubectl))

    probe = typer.Typer()
    probe.command()(command)
    flags = ["--context", "c", "--kubeconfig", "k", "--as", "u", "--as-group", "g", "--as-group", "h"]
    assert runner.invoke(probe, ["x", *flags]).exit_code == 0
    assert runner.invoke(probe, ["y"]).exit_code == 0
    assert seen == [
        ("x", KubectlFlags(context="c", kubeconfig=Path("k"), as_user="u", as_groups=["g", "h"])),
        ("y", KubectlFlags()),
    ]


def test_a_command_without_the_kubectl_parameter_is_refused_at_import():
    def command(name: str) -> None: ...

    with pytest.raises(TypeError, match="no parameter kubectl"):
        takes_kubectl_flags(command)


@pytest.mark.parametrize(
    ("fmt", "stdout", "stderr"),
    [
        (ListFormat.JSON, '{\n  "items": []\n}\n', ""),
        (ListFormat.YAML, "items: []\n", ""),
        (ListFormat.NAME, "evaluation.assay.dev/a\nevaluation.assay.dev/b\n", ""),
        (ListFormat.TABLE, "", "nothing here\n"),
    ],
)
def test_objects_are_printed_as_output_asks(fmt: ListFormat, stdout: str, stderr: str, capsys):
    print_objects(
        fmt,
        api_data=lambda: {"items": []},
        names=["evaluation.assay.dev/a", "evaluation.assay.dev/b"],
        tables=lambda: pytest.fail("no table when there is nothing to show"),
        nothing="nothing here",
    )
    assert capsys.readouterr() == (stdout, stderr)


def test_every_table_is_printed_when_there_is_something_to_show(capsys):
    print_objects(
        ListFormat.WIDE,
        api_data=lambda: pytest.fail("no API data for a table"),
        names=[],
        tables=lambda: [Text("first"), Text("second")],
    )
    assert capsys.readouterr().out == "first\nsecond\n"


def test_a_short_debug_password_is_refused_before_reaching_the_cluster(tmp_path: Path):
    manifest = tmp_path / "evaluation.yaml"
    manifest.write_text(
        "apiVersion: assay.dev/v1alpha1\nkind: Evaluation\nmetadata: {name: e}\n"
        "spec: {pool: p, model: {name: m, uri: file:///m}, handler: 'm:H', dataset: {name: d, uri: file:///d}}\n"
    )
    password = tmp_path / "pw.txt"
    password.write_text("too short\n")
    args = ["create", "-f", str(manifest), "--debug-password-file", str(password)]
    result = runner.invoke(app, [*args, "--kubeconfig", str(_kubeconfig(tmp_path))])
    assert result.exit_code == Invalid.exit_code
    assert result.stderr.startswith("error: debug password: 9 characters; it needs at least 16")
    missing = runner.invoke(
        app, [*args[:-1], str(tmp_path / "absent"), "--kubeconfig", str(_kubeconfig(tmp_path))]
    )
    assert missing.exit_code == Invalid.exit_code and "cannot read the debug password file" in missing.stderr
