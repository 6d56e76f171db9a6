"""EvaluationSets in the CLI: the example expands into four valid children, and the views show the table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from rich.console import Console

from assay.api import Evaluation, EvaluationSet
from assay.cli.run import set_children_from_manifest
from assay.cli.set_views import set_details, sets_table
from assay.rollup.evaluation_set import Child, expand, plan_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-matrix" / "evaluationset.yaml"
NOW = datetime(2026, 1, 2, tzinfo=UTC)


def rendered(renderable: object) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_the_example_expands_into_four_valid_children() -> None:
    children = [
        Evaluation.model_validate(c) for c in set_children_from_manifest(yaml.safe_load(EXAMPLE.read_text()))
    ]
    pairs = {(c.spec.model.version, c.spec.dataset.version) for c in children}
    assert pairs == {("v1", "v1"), ("v1", "noisy-v1"), ("v2", "v1"), ("v2", "noisy-v1")}
    assert all(c.metadata.annotations["assay.dev/local-volumes"] == "assay-examples=.." for c in children)


def test_the_set_view_shows_the_table_with_deltas_and_the_list_shows_progress_and_best() -> None:
    evaluation_set = EvaluationSet.model_validate(yaml.safe_load(EXAMPLE.read_text()))
    accuracy = iter([0.98, 0.97, 0.99, 0.9])
    children = {
        c.child: Child(c.child, "Succeeded", summary={"accuracy": next(accuracy)})
        for c in expand(evaluation_set.spec, evaluation_set.name)
    }
    status = plan_set(evaluation_set, children, [], NOW).status
    shown = evaluation_set.model_copy(update={"status": status})
    text = rendered(set_details(shown))
    assert (
        "digits-svc@v1" in text
        and "0.98 (baseline)" in text
        and "0.99 ▲+0.01" in text
        and "0.9 ▼-0.07" in text
    )
    listing = rendered(sets_table([shown], now=NOW))
    assert "4/4" in listing and "accuracy=0.99 digits-svc@v2 / digits-test@v1" in listing


def test_the_list_of_every_namespace_starts_with_the_namespace() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["metadata"]["namespace"] = "team-b"
    shown = EvaluationSet.model_validate(raw)
    header = rendered(sets_table([shown], all_namespaces=True, now=NOW)).splitlines()[0]
    assert header.split()[:2] == ["NAMESPACE", "NAME"]
    assert "team-b" in rendered(sets_table([shown], all_namespaces=True, now=NOW))
    assert "NAMESPACE" not in rendered(sets_table([shown], now=NOW))
