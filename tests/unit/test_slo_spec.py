"""The SLO spec says what the brief asks, names only metrics the services expose, and rejects
mistakes before they reach Prometheus."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString
from pydantic import ValidationError

from salesflow.api.http_metrics import ApiMetrics
from salesflow.metrics import FRESHNESS_BUCKETS, MESSAGE_LATENCY_BUCKETS, PipelineMetrics
from salesflow.outbox.relay_metrics import OutboxMetrics
from salesflow.slo import SPEC_PATH, Spec, generated_files, load_spec
from salesflow.slo.render import DASHBOARD, rule_files
from salesflow.slo.spec import EventsSLI, ThresholdSLI

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(ROOT / SPEC_PATH)


def test_the_three_slos_of_the_brief(spec: Spec) -> None:
    slos = {slo.name: slo for slo in spec.slos}
    assert {name: slo.objective for name, slo in slos.items()} == {
        "processing-success": Decimal("0.999"),
        "freshness": Decimal("0.99"),
        "message-latency": Decimal("0.99"),
    }
    success = slos["processing-success"].sli
    assert isinstance(success, EventsSLI)
    assert (success.metric, success.errors, success.total) == (
        "salesflow_events_processed_total",
        'status="failed"',
        'status=~"processed|failed"',
    )
    freshness, latency = slos["freshness"].sli, slos["message-latency"].sli
    assert isinstance(freshness, ThresholdSLI) and isinstance(latency, ThresholdSLI)
    assert (freshness.histogram, freshness.le) == ("salesflow_event_freshness_seconds", "5.0")
    assert (latency.histogram, latency.le) == ("salesflow_message_processing_latency_seconds", "60.0")


# prometheus_client.utils has no annotations: its signature, stated once.
go_float: Callable[[float], str] = floatToGoString


def test_the_thresholds_are_buckets_spelled_as_the_client_exposes_them() -> None:
    # A `le` that is not exactly a bucket label would select nothing, and the SLI would read 100% bad.
    assert go_float(5.0) == "5.0" and 5.0 in FRESHNESS_BUCKETS
    assert go_float(60.0) == "60.0" and 60.0 in MESSAGE_LATENCY_BUCKETS


def test_burn_rate_windows_are_the_workbooks(spec: Spec) -> None:
    assert spec.windows == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert spec.budget_window == "30d"
    table = {(a.severity, w.long, w.short, w.factor) for a in spec.burn_rate_alerts for w in a.windows}
    assert table == {
        ("page", "1h", "5m", Decimal("14.4")),
        ("page", "6h", "30m", Decimal(6)),
        ("ticket", "1d", "2h", Decimal(3)),
        ("ticket", "3d", "6h", Decimal(1)),
    }


def _exposed_names() -> set[str]:
    """Every series name the worker, the projection, the outbox relay and the API can expose (counters
    with _total, histograms' _bucket, _count, _sum)."""
    names: set[str] = set()
    registries = (PipelineMetrics().registry, OutboxMetrics().registry, ApiMetrics(CollectorRegistry()).registry)
    families = [family for registry in registries for family in registry.collect()]
    for family in families:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        names |= {family.name + suffix for suffix in suffixes}
    return names


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "expr" and isinstance(v, str)] + [
            e for v in node.values() for e in _exprs(v)
        ]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_rules_and_dashboard_read_only_metrics_the_services_expose(spec: Spec) -> None:
    files = generated_files(spec)
    exprs = [e for groups in rule_files(spec).values() for e in _exprs(groups)]
    exprs += _exprs(yaml.safe_load(files[DASHBOARD]))  # JSON is YAML
    used = {name for expr in exprs for name in re.findall(r"\bsalesflow_[a-z_]+\b", expr)}
    assert used, "no metric found: the pattern is wrong"
    assert used - _exposed_names() == set()
    assert {"salesflow_consumer_lag_seconds", "salesflow_dead_letters_total"} <= used


def _raw(spec: Spec) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((ROOT / SPEC_PATH).read_text())
    return raw


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("burn_rate_alerts", 0, "windows", 0, "short"), "2h", "must be shorter"),
        (("burn_rate_alerts", 0, "windows", 0, "long"), "1 hour", "String should match pattern"),
        (("slos", 0, "objective"), 1, "less than 1"),
        (("slos", 1, "name"), "processing-success", "duplicate slo names"),
        (("slos", 0, "sli", "kind"), "ratio", "does not match any of the expected tags"),
        (("alerts", "surprise"), 1, "Extra inputs are not permitted"),
    ],
)
def test_mistakes_in_the_spec_are_rejected(spec: Spec, path: tuple[Any, ...], value: Any, message: str) -> None:
    raw = _raw(spec)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValidationError, match=message):
        Spec.model_validate(raw)
