"""Metrics counted per batch: increments summed per (metric, labels), histogram samples grouped per
series, then applied once each.

A Prometheus ``inc`` or ``observe`` takes a lock (and ``observe`` walks the buckets); a batch of 500
events of four types touches a handful of series, so grouping first turns thousands of calls into a
few.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from salesflow.domain.outputs import Observation
from salesflow.metrics import PipelineMetrics, observe_many

Series = tuple[str, tuple[str, ...]]
BusinessSeries = tuple[str, tuple[tuple[str, str], ...]]


class BatchTally:
    """The metric increments and samples of one batch, applied together by ``apply``."""

    def __init__(self) -> None:
        self.counts: defaultdict[Series, float] = defaultdict(float)
        self.samples: defaultdict[Series, list[float]] = defaultdict(list)
        self.business: defaultdict[BusinessSeries, float] = defaultdict(float)
        self.business_samples: defaultdict[BusinessSeries, list[float]] = defaultdict(list)
        # Samples observed one by one with an exemplar (a sampled trace's ids); only while tracing.
        self.exemplars: list[tuple[Series, float, dict[str, str]]] = []

    def inc(self, metric: str, *labels: str, amount: float = 1.0) -> None:
        """Count ``amount`` on the ``PipelineMetrics`` attribute ``metric`` with ``labels``."""
        self.counts[(metric, labels)] += amount

    def observe(self, metric: str, value: float, *labels: str) -> None:
        """One histogram sample (histograms keep every value; only counters are summed)."""
        self.samples[(metric, labels)].append(value)

    def take_exemplar(self, metric: str, labels: tuple[str, ...], exemplar: dict[str, str] | None) -> None:
        """The sample just observed on ``metric``/``labels`` goes in with ``exemplar`` (if any) instead."""
        samples = self.samples.get((metric, labels))
        if samples and exemplar is not None:
            self.exemplars.append(((metric, labels), samples.pop(), exemplar))

    def business_observations(self, observations: Iterable[Observation], histograms: frozenset[str]) -> None:
        """Handler observations: counter ones summed per series, histogram ones (``histograms``, by
        metric name) kept one by one."""
        for o in observations:
            if o.metric in histograms:
                self.business_samples[(o.metric, o.labels)].append(o.value)
            else:
                self.business[(o.metric, o.labels)] += o.value

    def apply(self, metrics: PipelineMetrics, child: Any) -> None:
        """Apply everything counted; ``child(metric, labels)`` returns the (cached) labelled series."""
        for (name, labels), amount in self.counts.items():
            child(getattr(metrics, name), *labels).inc(amount)
        for (name, labels), values in self.samples.items():
            observe_many(child(getattr(metrics, name), *labels), values)
        for (name, labels), value, exemplar in self.exemplars:
            child(getattr(metrics, name), *labels).observe(value, exemplar=exemplar)
        for (name, pairs), amount in self.business.items():
            metrics.business_series(name, pairs).inc(amount)
        for (name, pairs), values in self.business_samples.items():
            observe_many(metrics.business_series(name, pairs), values)
