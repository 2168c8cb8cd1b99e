"""The Grafana dashboard, built from the SLO spec so its SLO panels follow the spec.

Rows: SLOs (error budget left, burn rates), throughput, latency, Kafka (lag, dead letters), the
projection and the scrape targets. Panels read a ``datasource`` variable, so the JSON imports into
any Grafana as well as through the provisioning files in ``deploy/grafana/provisioning``.
"""

from __future__ import annotations

from typing import Any

from salesflow.slo.rules import BUDGET_REMAINING, ERROR_BUDGET, error_ratio, selector
from salesflow.slo.spec import Spec

Panel = dict[str, Any]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def _targets(*queries: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i)}
        for i, (expr, legend) in enumerate(queries)
    ]


def _panel(
    kind: str,
    title: str,
    grid: tuple[int, int, int, int],
    unit: str,
    queries: list[tuple[str, str]],
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


def _quantiles(histogram: str, by: str, quantiles: tuple[float, ...]) -> list[tuple[str, str]]:
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


def service_panels(spec: Spec, y: int) -> list[Panel]:
    """Throughput, latency, Kafka and projection panels."""
    jobs = "|".join(job.job for job in spec.jobs)
    return [
        _row("Throughput", y),
        _panel(
            "timeseries",
            "Events processed by type and status",
            (0, y + 1, 12, 8),
            "ops",
            [(f"sum by (type, status) (rate(salesflow_events_processed_total[{RATE}]))", "{{type}} {{status}}")],
        ),
        _panel(
            "timeseries",
            "Records consumed by topic",
            (12, y + 1, 12, 8),
            "ops",
            [(f"sum by (topic) (rate(salesflow_events_consumed_total[{RATE}]))", "{{topic}}")],
        ),
        _row("Latency", y + 9),
        _panel(
            "timeseries",
            "Freshness (processed - occurred), replays excluded",
            (0, y + 10, 12, 8),
            "s",
            _quantiles("salesflow_event_freshness_seconds", "", (0.5, 0.95, 0.99)),
        ),
        _panel(
            "timeseries",
            "Message processing latency (sent - queued) by channel",
            (12, y + 10, 12, 8),
            "s",
            _quantiles("salesflow_message_processing_latency_seconds", "channel", (0.5, 0.99)),
        ),
        _panel(
            "timeseries",
            "Handler duration p99 by handler",
            (0, y + 18, 12, 8),
            "s",
            _quantiles("salesflow_handler_duration_seconds", "handler", (0.99,)),
        ),
        _panel(
            "timeseries",
            "Handler errors by handler and kind",
            (12, y + 18, 12, 8),
            "ops",
            [(f"sum by (handler, kind) (rate(salesflow_handler_errors_total[{RATE}]))", "{{handler}} {{kind}}")],
        ),
        _row("Kafka", y + 26),
        _panel(
            "timeseries",
            "Consumer lag: age of the oldest unprocessed record",
            (0, y + 27, 12, 8),
            "s",
            [("max by (group, topic) (salesflow_consumer_lag_seconds)", "{{group}} {{topic}}")],
        ),
        # Each instance reports the partitions it owns: records add up, seconds take the worst.
        _panel(
            "timeseries",
            "Consumer lag: records",
            (12, y + 27, 12, 8),
            "short",
            [("sum by (group, topic) (salesflow_consumer_lag)", "{{group}} {{topic}}")],
        ),
        _panel(
            "timeseries",
            "Dead letters by reason",
            (0, y + 35, 12, 8),
            "ops",
            [(f"sum by (reason) (rate(salesflow_dead_letters_total[{RATE}]))", "{{reason}}")],
        ),
        _panel(
            "timeseries",
            "Replayed events by type",
            (12, y + 35, 12, 8),
            "ops",
            [(f"sum by (type) (rate(salesflow_events_replayed_total[{RATE}]))", "{{type}}")],
        ),
        _row("Projection and targets", y + 43),
        _panel(
            "timeseries",
            "Projection rows written by table",
            (0, y + 44, 8, 8),
            "ops",
            [(f"sum by (table) (rate(salesflow_projection_rows_written_total[{RATE}]))", "{{table}}")],
        ),
        _panel(
            "timeseries",
            "Projection batch write p99, and write errors",
            (8, y + 44, 8, 8),
            "s",
            [
                *_quantiles("salesflow_projection_batch_duration_seconds", "", (0.99,)),
                (f"sum(rate(salesflow_projection_write_errors_total[{RATE}]))", "write errors/s"),
            ],
        ),
        _panel(
            "stat",
            "Scrape targets up",
            (16, y + 44, 8, 8),
            "none",
            [(f'up{{job=~"{jobs}"}}', "{{job}} {{instance}}")],
            defaults={
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                }
            },
            colorMode="background",
            reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False},
        ),
    ]


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
