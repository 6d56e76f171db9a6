"""The pure half of debug mode with the user's own password (assay.debug_password): the Secret, the
Evaluation naming it, the owner reference, and the length rule admission also applies."""

from __future__ import annotations

import base64

import pytest
from cli_samples import evaluation

from assay.contract import MIN_DEBUG_PASSWORD_LENGTH
from assay.debug_password import check_password, owned_by, password_secret, with_debug
from assay.errors import Invalid


def test_the_secret_holds_the_password_under_a_generated_name():
    secret = password_secret("cnn-v5", "a" * 20)
    assert secret["metadata"]["generateName"] == "cnn-v5-debug-password-"
    assert "name" not in secret["metadata"]
    assert base64.b64decode(secret["data"]["password"]).decode() == "a" * 20
    assert secret["metadata"]["labels"] == {"assay.dev/evaluation": "cnn-v5"}


def test_the_evaluation_names_the_secret_and_the_given_body_is_left_alone():
    body = {"metadata": {"name": "cnn-v5"}, "spec": {"pool": "a100"}}
    changed = with_debug(body, "cnn-v5-debug-password-x7k2p")
    assert changed["spec"]["debug"] == {
        "enabled": True,
        "passwordSecretRef": {"name": "cnn-v5-debug-password-x7k2p", "key": "password"},
    }
    assert "debug" not in body["spec"]
    assert with_debug(body)["spec"]["debug"] == {"enabled": True}  # a dry run: the generated kind


def test_the_owner_reference_names_the_evaluation_without_blocking_its_deletion():
    reference = owned_by(evaluation("cnn-v3"))["metadata"]["ownerReferences"]
    assert reference == [
        {"apiVersion": "assay.dev/v1alpha1", "kind": "Evaluation", "name": "cnn-v3", "uid": "uid-cnn-v3"}
    ]


def test_a_short_password_is_refused_with_the_rule():
    check_password("x" * MIN_DEBUG_PASSWORD_LENGTH)
    with pytest.raises(Invalid, match=r"debug password: 15 characters; it needs at least 16"):
        check_password("x" * (MIN_DEBUG_PASSWORD_LENGTH - 1))
