"""The SLO spec, ``deploy/slo/slos.yaml``: what each SLO measures, its objective, and the alerts.

The spec is data; ``salesflow.slo.rules`` and ``salesflow.slo.dashboard`` turn it into Prometheus
rules and a Grafana dashboard. Validation happens here, so a typo fails ``salesflow slo generate``
rather than a Prometheus reload.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["page", "ticket"]

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(duration: str) -> int:
    """Seconds in a Prometheus duration of one unit (``5m``, ``1h``, ``3d``)."""
    found = _DURATION.match(duration)
    if found is None:
        raise ValueError(f"not a duration like 5m, 1h or 3d: {duration!r}")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


Duration = Annotated[str, Field(pattern=_DURATION.pattern)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventsSLI(_Model):
    """Errors over all events, both counted by one counter: ``rate(errors) / rate(total)``."""

    kind: Literal["events"]
    metric: str
    errors: str = Field(description='label matchers selecting the errors, e.g. status="failed"')
    total: str = Field(description="label matchers selecting every event that counts")


class ThresholdSLI(_Model):
    """Events slower than a threshold, from a histogram: ``1 - rate(bucket{le}) / rate(count)``."""

    kind: Literal["threshold"]
    histogram: str = Field(description="the histogram's name, without _bucket or _count")
    le: str = Field(description='the bucket\'s upper bound exactly as exposed, e.g. "5.0"')


class SLO(_Model):
    """One SLO: its SLI, its objective, and the name of its burn-rate alert."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    alert: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", description="name of its burn-rate alert")
    objective: Decimal = Field(gt=0, lt=1)
    description: str
    sli: Annotated[EventsSLI | ThresholdSLI, Field(discriminator="kind")]

    @property
    def error_budget(self) -> Decimal:
        """The share of events allowed to be bad: ``1 - objective``."""
        return 1 - self.objective


class BurnWindow(_Model):
    """Fire while the error ratio is above ``factor`` x budget over both ``long`` and ``short``."""

    long: Duration
    short: Duration
    factor: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnWindow:
        if duration_seconds(self.short) >= duration_seconds(self.long):
            raise ValueError(f"short window {self.short} must be shorter than long window {self.long}")
        return self


class BurnRateAlert(_Model):
    """One severity of burn-rate alert: any of its window pairs burning fires it."""

    severity: Severity
    windows: list[BurnWindow] = Field(min_length=1)


class Job(_Model):
    """A scraped service: its short name, its Prometheus job label, its title in alert names."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    job: str
    title: str


class ServiceAlerts(_Model):
    """Thresholds of the alerts that are not SLO burn rates."""

    consumer_lag_seconds: float = Field(gt=0)
    consumer_lag_for: Duration
    dead_letter_ratio: float = Field(gt=0, lt=1)
    dead_letter_window: Duration
    dead_letter_for: Duration
    rejected_records_window: Duration = "15m"  # any record the projection rejected within it
    replays_per_minute: float = Field(default=100, gt=0)  # events replayed through the API...
    replay_window: Duration = "10m"  # ...on average over this window...
    replay_for: Duration = "5m"  # ...for this long
    down_for: Duration
    absent_for: Duration


class Spec(_Model):
    """The whole spec file."""

    service: str
    budget_window: Duration
    runbook_base_url: str
    jobs: list[Job] = Field(min_length=1)
    slos: list[SLO] = Field(min_length=1)
    burn_rate_alerts: list[BurnRateAlert] = Field(min_length=1)
    alerts: ServiceAlerts

    @field_validator("runbook_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique_names(self) -> Spec:
        for what, names in (
            ("slo", [s.name for s in self.slos]),
            ("alert", [s.alert for s in self.slos]),
            ("job", [j.name for j in self.jobs]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {what} names: {names}")
        return self

    @property
    def windows(self) -> list[str]:
        """Every window a burn-rate alert reads, shortest first: the error ratios to record."""
        found = {w for alert in self.burn_rate_alerts for bw in alert.windows for w in (bw.long, bw.short)}
        return sorted(found, key=duration_seconds)

    def runbook_url(self, alert: str) -> str:
        """Where the runbook of ``alert`` lives."""
        return f"{self.runbook_base_url}/{alert}.md"


def load_spec(path: Path) -> Spec:
    """Read and validate a spec file."""
    import yaml  # a dev dependency: only `salesflow slo` needs it, not the services

    return Spec.model_validate(yaml.safe_load(path.read_text()))
