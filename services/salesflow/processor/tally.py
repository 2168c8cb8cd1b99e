"""Metrics counted per batch: increments summed per (metric, labels), then applied once each.

A Prometheus ``inc`` takes a lock; a batch of 500 events of four types touches a handful of series,
so summing first turns thousands of calls into a few.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from prometheus_client import Histogram

from salesflow.domain.outputs import Observation
from salesflow.metrics import PipelineMetrics


class BatchTally:
    """The metric increments and samples of one batch, applied together by ``apply``."""

    def __init__(self) -> None:
        self.counts: defaultdict[tuple[str, tuple[str, ...]], float] = defaultdict(float)
        self.samples: list[tuple[str, tuple[str, ...], float]] = []
        self.business: defaultdict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.business_samples: list[Observation] = []

    def inc(self, metric: str, *labels: str, amount: float = 1.0) -> None:
        """Count ``amount`` on the ``PipelineMetrics`` attribute ``metric`` with ``labels``."""
        self.counts[(metric, labels)] += amount

    def observe(self, metric: str, value: float, *labels: str) -> None:
        """One histogram sample (histograms keep every value; only counters are summed)."""
        self.samples.append((metric, labels, value))

    def business_observations(self, observations: Iterable[Observation], histograms: frozenset[str]) -> None:
        """Handler observations: counter ones summed per series, histogram ones (``histograms``, by
        metric name) kept one by one."""
        for o in observations:
            if o.metric in histograms:
                self.business_samples.append(o)
            else:
                self.business[(o.metric, o.labels)] += o.value

    def apply(self, metrics: PipelineMetrics, child: Any) -> None:
        """Apply everything counted; ``child(metric, labels)`` returns the (cached) labelled series."""
        for (name, labels), amount in self.counts.items():
            child(getattr(metrics, name), *labels).inc(amount)
        for name, labels, value in self.samples:
            child(getattr(metrics, name), *labels).observe(value)
        summed = [Observation.model_construct(metric=m, labels=lb, value=v) for (m, lb), v in self.business.items()]
        metrics.observe([*summed, *self.business_samples])


def histogram_names(metrics: PipelineMetrics) -> frozenset[str]:
    """The business metrics that are histograms (their samples cannot be summed)."""
    # PipelineMetrics keeps its business metrics in a private mapping; only read here.
    return frozenset(name for name, m in metrics._business.items() if isinstance(m, Histogram))
