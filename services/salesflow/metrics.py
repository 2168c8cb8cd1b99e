"""Prometheus metrics, all in one place, registered on an injected ``CollectorRegistry``.

Names carry the ``salesflow_`` prefix and base units; labels are bounded (type, topic, handler,
status, channel, reason) and never carry a tenant or lead id. Histogram buckets include each SLO
threshold exactly: 5 s for freshness, 60 s for message processing latency.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FRESHNESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
MESSAGE_LATENCY_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PipelineMetrics:
    """Every metric of the worker and the projection; each service uses the ones it records."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._children: dict[tuple[int, tuple[Any, ...]], Any] = {}
        r = self.registry
        self.events_consumed = _counter(r, "salesflow_events_consumed", "Records read from a source topic", "topic")
        self.events_processed = _counter(
            r, "salesflow_events_processed", "Events with a final status, by type and status", "type", "status"
        )
        self.handler_duration = _histogram(
            r, "salesflow_handler_duration_seconds", "Time in one handler call", DURATION_BUCKETS, "handler"
        )
        self.handler_errors = _counter(
            r, "salesflow_handler_errors", "Handler calls that raised, by handler and kind", "handler", "kind"
        )
        self.freshness = _histogram(
            r,
            "salesflow_event_freshness_seconds",
            "Processed minus occurred time, replays excluded",
            FRESHNESS_BUCKETS,
            "type",
        )
        self.dead_letters = _counter(
            r, "salesflow_dead_letters", "Records sent to the dead-letter topic, by reason", "reason"
        )
        self.replays = _counter(r, "salesflow_events_replayed", "Events processed again (replays)", "type")
        self.consumer_lag = _gauge(
            r, "salesflow_consumer_lag", "Records not yet processed, by group and topic", "group", "topic"
        )
        self.consumer_lag_seconds = _gauge(
            r, "salesflow_consumer_lag_seconds", "Age of the oldest unprocessed record", "group", "topic"
        )
        self._projection_metrics(r)
        self._business = _business_metrics(r)
        # (metric, labels) of observations already found well-formed -> whether the metric is a counter
        self._checked_series: dict[tuple[str, tuple[tuple[str, str], ...]], bool] = {}

    def _projection_metrics(self, r: CollectorRegistry) -> None:
        self.projection_rows = _counter(
            r, "salesflow_projection_rows_written", "Rows upserted by the projection, by table", "table"
        )
        self.projection_batch_duration = _histogram(
            r, "salesflow_projection_batch_duration_seconds", "Time to write one projection batch", DURATION_BUCKETS
        )
        self.projection_write_errors = _counter(
            r, "salesflow_projection_write_errors", "Failed projection batch writes (retried)"
        )
        self.projection_rejected_records = _counter(
            r,
            "salesflow_projection_rejected_records",
            "Records the projection kept aside in rejected_records instead of writing, by reason",
            "reason",
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """The labelled child of one of these metrics, looked up once: ``labels()`` takes a lock and
        builds its key on every call, which the profiles put at several percent of the worker (most of
        dispatch's own time). The labels are bounded, so the cache is."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def business_series(self, name: str, labels: tuple[tuple[str, str], ...]) -> Any:
        """The series of the business metric ``name`` with ``labels`` (name/value pairs), looked up once."""
        metric = self._business[name]
        if not labels:
            return metric
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(**dict(labels))
        return found

    def check_observation(self, metric: str, value: float, labels: tuple[tuple[str, str], ...]) -> None:
        """Raises ``ValueError`` for a handler observation that could not be applied: a metric this
        worker does not define, label names other than the metric's, a NaN sample, or a counter amount
        that is negative or infinite. prometheus-client would only raise when the batch's tally is
        applied, after every record of the batch; checked here, one bad output fails its own event."""
        counter = self._checked_series.get((metric, labels))
        if counter is None:  # the first observation of this series: its metric and label names
            found = self._business.get(metric)
            if found is None:
                known = ", ".join(sorted(self._business))
                raise ValueError(f"observation of unknown metric {metric!r}; known: {known}")
            names = tuple(sorted(name for name, _ in labels))
            expected = tuple(sorted(found._labelnames))
            if names != expected:
                raise ValueError(f"observation of {metric!r} labelled {list(names)}; it takes {list(expected)}")
            counter = self._checked_series[(metric, labels)] = isinstance(found, Counter)
        if math.isnan(value) or (counter and not 0 <= value < math.inf):
            raise ValueError(f"observation of {metric!r} with value {value!r}, which it cannot count")

    def histogram_names(self) -> frozenset[str]:
        """The business metrics that are histograms (their samples are kept, not summed)."""
        return frozenset(name for name, m in self._business.items() if isinstance(m, Histogram))


def observe_many(series: Any, values: Sequence[float]) -> None:
    """``series.observe(v)`` for each of ``values``, in one pass: each sample's bucket by bisection,
    then one increment per bucket touched and one of the sum (prometheus-client's ``observe`` takes a
    lock and walks the buckets per sample, a measured share of the worker's time). The exposition is
    the same as observing one by one (``tests/unit/test_tally.py``). Falls back to ``observe`` where
    the series is not a plain histogram child of the layout this relies on."""
    bounds = getattr(series, "_upper_bounds", None)
    buckets = getattr(series, "_buckets", None)
    total = getattr(series, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            series.observe(value)
        return
    if not values:
        return
    series._raise_if_not_observable()
    per_bucket: Tally[int] = Tally()
    for value in values:
        if not math.isnan(value):  # NaN falls in no bucket; it still counts in the sum, as with observe
            per_bucket[bisect_left(bounds, value)] += 1
    total.inc(sum(values))  # not fsum: it raises on inf + -inf, where observe gives NaN
    for index, count in per_bucket.items():
        if index < len(buckets):
            buckets[index].inc(count)


def _business_metrics(r: CollectorRegistry) -> dict[str, Counter | Histogram]:
    return {
        "message_processing_latency_seconds": _histogram(
            r,
            "salesflow_message_processing_latency_seconds",
            "Message sent_at minus queued_at, by channel",
            MESSAGE_LATENCY_BUCKETS,
            "channel",
        ),
        "leads_created_total": _counter(r, "salesflow_leads_created", "Leads created, by source", "source"),
        "autopilot_actions_total": _counter(
            r, "salesflow_autopilot_actions", "Autopilot actions executed, by outcome", "outcome"
        ),
        "ai_cost_usd_total": _counter(r, "salesflow_ai_cost_usd", "AI cost of autopilot actions, in USD"),
        "ai_value_usd_total": _counter(r, "salesflow_ai_value_usd", "Value attributed to autopilot actions, in USD"),
        "messages_sent_total": _counter(r, "salesflow_messages_sent", "Messages sent, by channel", "channel"),
        "sequence_steps_total": _counter(r, "salesflow_sequence_steps", "Sequence steps executed, by status", "status"),
    }


# A metric in one call: name, help text, then its label names (bounded; see the module docstring).
def _counter(r: CollectorRegistry, name: str, documentation: str, *labels: str) -> Counter:
    return Counter(name, documentation, labels, registry=r)


def _gauge(r: CollectorRegistry, name: str, documentation: str, *labels: str) -> Gauge:
    return Gauge(name, documentation, labels, registry=r)


def _histogram(
    r: CollectorRegistry, name: str, documentation: str, buckets: Sequence[float], *labels: str
) -> Histogram:
    return Histogram(name, documentation, labels, buckets=buckets, registry=r)
