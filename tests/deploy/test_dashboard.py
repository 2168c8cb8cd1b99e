"""The Grafana dashboard: the panels the brief asks for, valid PromQL in every query (checked by
promtool), a layout without overlaps, and provisioning that finds it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from salesflow.slo.render import DASHBOARD
from tests.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads((ROOT / DASHBOARD).read_text()))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_panels_an_operator_needs(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(p["title"] for p in _panels(dashboard))
    for wanted in (
        "Events processed by type and status",
        "Freshness",
        "Message processing latency",
        "error budget left",
        "burn rate",
        "Consumer lag",
        "Dead letters",
    ):
        assert wanted in titles, wanted
    exprs = " ".join(t["expr"] for p in _panels(dashboard) for t in p["targets"])
    assert "histogram_quantile(0.99, sum by (le) (rate(salesflow_event_freshness_seconds_bucket" in exprs
    assert "sum by (type, status) (rate(salesflow_events_processed_total" in exprs


def test_every_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # promtool parses rule files only: wrap each query in a recording rule, Grafana's variables
    # replaced by what they expand to.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": t["expr"].replace("$__rate_interval", "1m")}
        for i, t in enumerate(t for p in _panels(dashboard) for t in p["targets"])
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_layout_ids_and_data_source(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
    assert all(t["datasource"]["uid"] == "${datasource}" for p in _panels(dashboard) for t in p["targets"])
    datasources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
