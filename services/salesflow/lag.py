"""Consumer lag, in records and in seconds, per group and topic: one computation for every service.

Records: log end offset minus the next offset to process, summed over the topic's partitions.
Seconds: for a partition that is behind, the age of the last record processed on it (the oldest
unprocessed record is at least that old, so this is a lower bound that grows while a consumer is stuck);
0 for a partition that is caught up. The topic's value is its worst partition.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import IllegalStateError

from salesflow.metrics import PipelineMetrics

Partition = tuple[str, int]

# How often each consumer sets its lag gauges: a gauge read every scrape, not a hot-path cost.
REPORT_SECONDS = 5.0


@dataclass(frozen=True)
class TopicLag:
    records: int
    seconds: float


def lag_by_topic(
    end_offsets: Mapping[Partition, int],
    next_offsets: Mapping[Partition, int],
    last_timestamps: Mapping[Partition, float],
    now: float,
) -> dict[str, TopicLag]:
    totals: dict[str, TopicLag] = {}
    for tp, end in end_offsets.items():
        behind = max(end - next_offsets.get(tp, 0), 0)
        seconds = max(now - last_timestamps[tp], 0.0) if behind and tp in last_timestamps else 0.0
        seen = totals.get(tp[0], TopicLag(0, 0.0))
        totals[tp[0]] = TopicLag(seen.records + behind, max(seen.seconds, seconds))
    return totals


@dataclass
class LagTracker:
    """What a consumer has processed, per partition, to report its lag from."""

    metrics: PipelineMetrics
    group: str
    next_offsets: dict[Partition, int] = field(default_factory=dict)
    last_timestamps: dict[Partition, float] = field(default_factory=dict)
    last_report: float = 0.0  # time.monotonic() of the last report

    def due(self) -> bool:
        """Whether ``REPORT_SECONDS`` have passed since the last report (then counts this one)."""
        now = time.monotonic()
        if now - self.last_report < REPORT_SECONDS:
            return False
        self.last_report = now
        return True

    def processed(self, topic: str, partition: int, offset: int, timestamp_s: float | None) -> None:
        self.next_offsets[(topic, partition)] = max(offset + 1, self.next_offsets.get((topic, partition), 0))
        if timestamp_s is not None:
            self.last_timestamps[(topic, partition)] = timestamp_s

    def forget(self) -> None:
        """After a rebalance: what we knew of a partition may be stale (another consumer moved it on)."""
        self.next_offsets.clear()
        self.last_timestamps.clear()

    def report(
        self, end_offsets: Mapping[Partition, int], positions: Mapping[Partition, int], now: float
    ) -> dict[str, TopicLag]:
        """Set the gauges. ``positions`` (the consumer's fetch positions) stand in for partitions that
        have processed nothing since the last rebalance."""
        lags = lag_by_topic(end_offsets, {**positions, **self.next_offsets}, self.last_timestamps, now)
        for topic, lag in lags.items():
            self.metrics.consumer_lag.labels(self.group, topic).set(lag.records)
            self.metrics.consumer_lag_seconds.labels(self.group, topic).set(lag.seconds)
        return lags


async def report_async(
    lag: LagTracker,
    assigned: Collection[Any],
    end_offsets: Callable[[list[Any]], Awaitable[Mapping[Any, int]]],
    position: Callable[[Any], Awaitable[int | None]],
) -> None:
    """Report the lag of an asyncio consumer (aiokafka's, or Faust's over it) from its assignment."""
    if not assigned:
        return
    try:
        ends = await end_offsets(list(assigned))
        positions = {(tp.topic, tp.partition): await position(tp) or 0 for tp in assigned}
    except IllegalStateError:
        # A rebalance took a partition away between the two calls: a metric must never crash the
        # consumer (it did, restarting a worker on every rebalance); the next report sees the new one.
        return
    lag.report({(tp.topic, tp.partition): end for tp, end in ends.items()}, positions, time.time())
