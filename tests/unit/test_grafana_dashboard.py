"""The Grafana dashboard queries only metrics the operator exports, and shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from assay.controller.metrics import OperatorMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "assay.json"


def exported_series() -> dict[str, str]:
    """Every series name the operator can export (with _total/_bucket/... suffixes) -> its family."""
    registry = CollectorRegistry()
    OperatorMetrics(registry)
    names: dict[str, str] = {}
    for family in registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
        }.get(family.type, [""])
        for suffix in suffixes:
            names[family.name + suffix] = family.name
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [var["definition"] for var in dashboard["templating"]["list"] if "definition" in var]
    return queries


def test_every_query_uses_exported_metrics() -> None:
    exported = exported_series()
    for query in dashboard_queries():
        used = set(re.findall(r"\bassay_[a-z_]+", query))
        assert used, query
        assert used <= set(exported), f"unknown metric in {query!r}: {used - set(exported)}"


def test_every_metric_has_a_panel() -> None:
    exported = exported_series()
    shown = {exported[name] for q in dashboard_queries() for name in re.findall(r"\bassay_[a-z_]+", q)}
    assert shown == set(exported.values())


def test_panels_have_unique_ids_and_titles() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert len({p["title"] for p in panels}) == len(panels)
