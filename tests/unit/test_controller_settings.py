"""Operator settings: documented defaults, overridden by ASSAY_OPERATOR_* variables, bad values named."""

from __future__ import annotations

import pytest

from assay.controller.main import parse_args
from assay.controller.settings import OperatorSettings


def test_defaults() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.default_auto_release_seconds == 3600
    assert settings.job_retention_seconds == 3600
    assert settings.namespaces == ()


def test_environment_overrides() -> None:
    settings = OperatorSettings.from_env(
        {
            "ASSAY_OPERATOR_JOB_RETENTION_SECONDS": "60",
            "ASSAY_OPERATOR_NAMESPACES": "team-a, team-b",
            "ASSAY_OPERATOR_RECONCILE_BATCH_SECONDS": "0.5",
            "ASSAY_OPERATOR_DEFAULT_RUNTIME_IMAGE": "registry.example.com/rt:1",
        }
    )
    assert settings.job_retention_seconds == 60
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.reconcile_batch_seconds == 0.5
    assert settings.default_runtime_image == "registry.example.com/rt:1"


def test_an_empty_list_is_kept() -> None:
    assert OperatorSettings.from_env({"ASSAY_OPERATOR_RUNNER_COMMAND": ""}).runner_command == ()
    assert OperatorSettings.from_env({}).runner_command == ("python", "-m", "assay.runner")


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="ASSAY_OPERATOR_JOB_RETENTION_SECONDS"):
        OperatorSettings.from_env({"ASSAY_OPERATOR_JOB_RETENTION_SECONDS": "an hour"})


def test_command_line() -> None:
    args = parse_args(
        ["--kubeconfig", "k.yaml", "-n", "a", "-n", "b", "--webhook", "local", "--metrics-port", "0"]
    )
    assert (args.kubeconfig, args.namespaces, args.webhook, args.metrics_port) == (
        "k.yaml",
        ["a", "b"],
        "local",
        0,
    )


def test_generated_debug_passwords_keep_the_minimum_length() -> None:
    variable = "ASSAY_OPERATOR_DEBUG_PASSWORD_LENGTH"
    with pytest.raises(ValueError, match=rf"{variable}=15: .*at least 16 characters"):
        OperatorSettings.from_env({variable: "15"})
    assert OperatorSettings.from_env({variable: "16"}).debug_password_length == 16


def test_workers_and_connections_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="ASSAY_OPERATOR_CONCURRENT_RECONCILES=0: at least 1"):
        OperatorSettings.from_env({"ASSAY_OPERATOR_CONCURRENT_RECONCILES": "0"})
    assert OperatorSettings.from_env({"ASSAY_OPERATOR_API_CONNECTIONS": "4"}).api_connections == 4
