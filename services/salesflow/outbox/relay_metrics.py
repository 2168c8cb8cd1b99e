"""The relay's Prometheus metrics, on an injected registry; labels are bounded (topic, stage)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class OutboxMetrics:
    """Backlog (rows, age of the oldest), records published, rows held for a missing topic, relay
    errors, and who leads."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.backlog_rows = Gauge("salesflow_outbox_backlog_rows", "Outbox rows not yet published", registry=r)
        self.oldest_age = Gauge(
            "salesflow_outbox_oldest_row_age_seconds", "Age of the oldest outbox row (0 when empty)", registry=r
        )
        self.published = Counter(
            "salesflow_outbox_published", "Outbox records acknowledged by the broker", ["topic"], registry=r
        )
        self.held_rows = Gauge(
            "salesflow_outbox_held_rows",
            "Outbox rows held back because their topic does not exist on the cluster",
            ["topic"],
            registry=r,
        )
        self.errors = Counter(
            "salesflow_outbox_relay_errors",
            "Relay failures, by stage (kafka, database, unknown_topic)",
            ["stage"],
            registry=r,
        )
        self.leader = Gauge("salesflow_outbox_relay_leader", "1 while this relay holds the leader lock", registry=r)
