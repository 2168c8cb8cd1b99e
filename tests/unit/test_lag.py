from __future__ import annotations

from salesflow.lag import LagTracker, TopicLag, lag_by_topic
from salesflow.metrics import PipelineMetrics


def test_lag_sums_partitions_and_takes_the_worst_age() -> None:
    lags = lag_by_topic(
        end_offsets={("a", 0): 10, ("a", 1): 5, ("b", 0): 7},
        next_offsets={("a", 0): 4, ("a", 1): 5, ("b", 0): 7},
        last_timestamps={("a", 0): 90.0, ("a", 1): 10.0, ("b", 0): 1.0},
        now=100.0,
    )
    assert lags == {"a": TopicLag(records=6, seconds=10.0), "b": TopicLag(records=0, seconds=0.0)}


def test_the_tracker_sets_the_gauges_and_falls_back_to_positions() -> None:
    metrics = PipelineMetrics()
    tracker = LagTracker(metrics, "g")
    tracker.processed("a", 0, offset=7, timestamp_s=95.0)
    tracker.report({("a", 0): 10, ("a", 1): 4}, positions={("a", 0): 9, ("a", 1): 1}, now=100.0)
    sample = metrics.registry.get_sample_value
    assert sample("salesflow_consumer_lag", {"group": "g", "topic": "a"}) == 2 + 3
    assert sample("salesflow_consumer_lag_seconds", {"group": "g", "topic": "a"}) == 5.0
