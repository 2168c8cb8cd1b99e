"""The Grafana dashboard, built from the SLO spec so its SLO panels follow the spec.

Rows: SLOs (error budget left, burn rates), throughput, latency, Kafka (lag, dead letters), the
projection and the scrape targets. Panels read a ``datasource`` variable, so the JSON imports into
any Grafana as well as through the provisioning files in ``deploy/grafana/provisioning``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from salesflow.slo.rules import BUDGET_REMAINING, ERROR_BUDGET, error_ratio, selector
from salesflow.slo.spec import Spec

Panel = dict[str, Any]
Query = tuple[str, str]  # (PromQL, legend)
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
GRID_WIDTH = 24  # Grafana's columns


def _targets(*queries: Query) -> list[dict[str, Any]]:
    return [
        {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i)}
        for i, (expr, legend) in enumerate(queries)
    ]


def _panel(
    kind: str,
    title: str,
    grid: tuple[int, int, int, int],
    unit: str,
    queries: Sequence[Query],
    description: str = "",
    **options: Any,
) -> Panel:
    x, y, w, h = grid
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit, **options.pop("defaults", {})}, "overrides": []},
        "options": options,
        "targets": _targets(*queries),
    }


def _row(title: str, y: int) -> Panel:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def _quantiles(histogram: str, by: str, quantiles: tuple[float, ...]) -> list[Query]:
    extra = f"{by}, " if by else ""
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        (f"histogram_quantile({q}, sum by ({extra}le) (rate({histogram}_bucket[{RATE}])))", f"p{q * 100:g}{suffix}")
        for q in quantiles
    ]


def slo_panels(spec: Spec, y: int) -> list[Panel]:
    """Per SLO: the error budget left over the budget window, and burn rates over the alert windows."""
    panels: list[Panel] = [_row("Service level objectives", y)]
    width = 24 // len(spec.slos)
    thresholds = {
        "mode": "absolute",
        "steps": [
            {"color": "red", "value": None},
            {"color": "orange", "value": 0.25},
            {"color": "green", "value": 0.5},
        ],
    }
    factors = sorted({float(w.factor) for a in spec.burn_rate_alerts for w in a.windows}, reverse=True)
    for i, slo in enumerate(spec.slos):
        sel = selector(spec, slo)
        panels.append(
            _panel(
                "stat",
                f"{slo.name}: error budget left ({spec.budget_window})",
                (i * width, y + 1, width, 5),
                "percentunit",
                [(f"{BUDGET_REMAINING}{sel}", slo.name)],
                slo.description,
                defaults={"thresholds": thresholds, "decimals": 1},
                colorMode="background",
                graphMode="area",
                reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False},
            )
        )
        burn = [(f"{error_ratio(w)}{sel} / {ERROR_BUDGET}{sel}", w) for w in spec.windows]
        panels.append(
            _panel(
                "timeseries",
                f"{slo.name}: burn rate (1 = spending exactly the budget)",
                (i * width, y + 6, width, 8),
                "none",
                burn,
                f"Error ratio over each alert window divided by the error budget; alerts at {factors}x.",
                defaults={
                    "custom": {"thresholdsStyle": {"mode": "line"}},
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [{"color": "green", "value": None}, *({"color": "red", "value": f} for f in factors)],
                    },
                },
            )
        )
    return panels


@dataclass(frozen=True)
class Chart:
    """One panel of the service rows: laid out left to right, ``width`` of 24 columns, 8 high."""

    title: str
    unit: str
    queries: Sequence[Query]
    width: int = 12
    kind: str = "timeseries"
    options: Mapping[str, Any] = field(default_factory=dict)


def _rate_by(metric: str, labels: str) -> list[Query]:
    """Per-second rate of a counter, summed by ``labels`` (comma-separated), one series per value."""
    return [(f"sum by ({labels}) (rate({metric}[{RATE}]))", _legend(labels))]


def _gauge_by(how: str, metric: str, labels: str) -> list[Query]:
    """A gauge, aggregated (``how``: sum, max) by ``labels``."""
    return [(f"{how} by ({labels}) ({metric})", _legend(labels))]


def _legend(labels: str) -> str:
    return " ".join(f"{{{{{label.strip()}}}}}" for label in labels.split(","))


JOBS = "<jobs>"  # stands for the spec's scrape jobs (``a|b``), filled in by ``service_panels``
TARGETS_UP: Mapping[str, Any] = {
    "defaults": {
        "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}
    },
    "colorMode": "background",
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
}

# The rows under the SLOs, one entry per panel in layout order; a string starts a row (its header).
SERVICE_PANELS: tuple[str | Chart, ...] = (
    "Throughput",
    Chart("Events processed by type and status", "ops", _rate_by("salesflow_events_processed_total", "type, status")),
    Chart("Records consumed by topic", "ops", _rate_by("salesflow_events_consumed_total", "topic")),
    "Latency",
    Chart(
        "Freshness (processed - occurred), replays excluded",
        "s",
        _quantiles("salesflow_event_freshness_seconds", "", (0.5, 0.95, 0.99)),
    ),
    Chart(
        "Message processing latency (sent - queued) by channel",
        "s",
        _quantiles("salesflow_message_processing_latency_seconds", "channel", (0.5, 0.99)),
    ),
    Chart("Handler duration p99 by handler", "s", _quantiles("salesflow_handler_duration_seconds", "handler", (0.99,))),
    Chart("Handler errors by handler and kind", "ops", _rate_by("salesflow_handler_errors_total", "handler, kind")),
    "Kafka",
    # Each instance reports the partitions it owns: records add up, seconds take the worst.
    Chart(
        "Consumer lag: age of the oldest unprocessed record",
        "s",
        _gauge_by("max", "salesflow_consumer_lag_seconds", "group, topic"),
    ),
    Chart("Consumer lag: records", "short", _gauge_by("sum", "salesflow_consumer_lag", "group, topic")),
    Chart("Dead letters by reason", "ops", _rate_by("salesflow_dead_letters_total", "reason")),
    Chart("Replayed events by type", "ops", _rate_by("salesflow_events_replayed_total", "type")),
    "Projection and targets",
    Chart("Projection rows written by table", "ops", _rate_by("salesflow_projection_rows_written_total", "table"), 8),
    Chart(
        "Projection batch write p99, and write errors",
        "s",
        [
            *_quantiles("salesflow_projection_batch_duration_seconds", "", (0.99,)),
            (f"sum(rate(salesflow_projection_write_errors_total[{RATE}]))", "write errors/s"),
        ],
        8,
    ),
    Chart("Scrape targets up", "none", [(f'up{{job=~"{JOBS}"}}', "{{job}} {{instance}}")], 8, "stat", TARGETS_UP),
)
CHART_HEIGHT = 8


def _chart(chart: Chart, x: int, y: int, jobs: str) -> Panel:
    queries = [(expr.replace(JOBS, jobs), legend) for expr, legend in chart.queries]
    options = copy.deepcopy(dict(chart.options))  # the panel owns its options; the table stays as it is
    return _panel(chart.kind, chart.title, (x, y, chart.width, CHART_HEIGHT), chart.unit, queries, **options)


def service_panels(spec: Spec, y: int) -> list[Panel]:
    """Throughput, latency, Kafka and projection panels (``SERVICE_PANELS``) from ``y`` down: each row's
    header, then its charts left to right, on a new line where the 24 columns are full."""
    jobs = "|".join(job.job for job in spec.jobs)
    panels: list[Panel] = []
    x = 0
    for entry in SERVICE_PANELS:
        if isinstance(entry, str):  # a row: below the charts of the one before
            y += CHART_HEIGHT if panels else 0
            panels.append(_row(entry, y))
            x, y = 0, y + 1
            continue
        if x + entry.width > GRID_WIDTH:
            x, y = 0, y + CHART_HEIGHT
        panels.append(_chart(entry, x, y, jobs))
        x += entry.width
    return panels


def dashboard(spec: Spec) -> dict[str, Any]:
    """The whole dashboard model, ready for ``json.dumps``."""
    panels = slo_panels(spec, 0)
    panels += service_panels(spec, max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels))
    for panel_id, panel in enumerate(panels, start=1):
        panel["id"] = panel_id
    return {
        "uid": f"{spec.service}-events",
        "title": "SalesFlow Events",
        "tags": [spec.service, "slo"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }
