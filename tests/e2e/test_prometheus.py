"""A real Prometheus scrapes a running worker and projection under a demo load, evaluates the
generated recording and alerting rules, and the SLIs it records match what the load did.

Why a warm-up: ``rate()`` counts what a counter gained *after* its first sample, so a histogram
series born in the middle of the load would lose its first scrape's worth of events (a different
share for each channel). Warm-up events, all good, create every series first; the load that follows
is then counted in full, and the recorded ratios are the load's own.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from salesflow.bootstrap import event_producer
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics
from salesflow.producer.demo import DemoGenerator, invalid_records
from salesflow.producer.envelope import envelope
from salesflow.settings import Settings
from salesflow.slo import SPEC_PATH, load_spec
from salesflow.slo.render import RECORDING_RULES, SERVICE_ALERTS, SLO_ALERTS
from tests.conftest import SettingsFactory
from tests.e2e.prometheus import PrometheusServer, free_port
from tests.harness import ROOT, wait_for

pytestmark = pytest.mark.e2e

CHANNELS = ("email", "whatsapp", "linkedin", "sms")
FAST_SECONDS, SLOW_SECONDS = 2, 90  # either side of the 60 s message-latency threshold
LOAD_EVENTS, BATCHES = 480, 8


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _message(lead: str, n: int, channel: str, latency: float) -> dict[str, Any]:
    sent = datetime.now(UTC)
    return envelope(
        EventType.MESSAGE_SENT,
        "acme",
        {
            "lead_id": lead,
            "message_id": f"msg-warm-{n}",
            "channel": channel,
            "queued_at": _iso(sent - timedelta(seconds=latency)),
            "sent_at": _iso(sent),
        },
    )


def warmup_events() -> list[dict[str, Any]]:
    """One good event of every type and two fast messages per channel: every SLI series exists."""
    lead = "lead-warmup"
    return [
        envelope(EventType.LEAD_CREATED, "acme", {"lead_id": lead, "source": "api"}),
        envelope(
            EventType.AUTOPILOT_ACTION_EXECUTED,
            "acme",
            {
                "lead_id": lead,
                "action_id": "act-warmup",
                "action_type": "qualify_lead",
                "cost_usd": 0.1,
                "outcome": "succeeded",
            },
        ),
        envelope(
            EventType.SEQUENCE_STEP_EXECUTED,
            "acme",
            {"lead_id": lead, "sequence_id": "seq-warmup", "step_index": 0, "action": "email", "status": "executed"},
        ),
        *(_message(lead, n, channel, FAST_SECONDS) for n, channel in enumerate(CHANNELS * 2)),
    ]


class Load:
    """Demo events, with every fourth message held 90 s in its queue: a known slow share."""

    def __init__(self, seed: int = 11) -> None:
        self._events = DemoGenerator(seed=seed).events(LOAD_EVENTS)
        self.messages = 0
        self.slow = 0

    def batch(self, size: int) -> list[dict[str, Any]]:
        """The next ``size`` events, stamped now (so their freshness is the pipeline's own)."""
        return [self._shape(event) for event in itertools.islice(self._events, size)]

    def _shape(self, event: dict[str, Any]) -> dict[str, Any]:
        if event["type"] != EventType.MESSAGE_SENT.value:
            return event
        slow = self.messages % 4 == 0
        self.messages += 1
        self.slow += slow
        sent = datetime.fromisoformat(event["data"]["sent_at"])
        latency = SLOW_SECONDS if slow else FAST_SECONDS
        return {**event, "data": {**event["data"], "queued_at": _iso(sent - timedelta(seconds=latency))}}


@pytest.fixture(scope="module")
def pipeline(settings_factory: SettingsFactory, service_factory: Any) -> Settings:
    """A worker and a projection on their own topics, metrics on ports chosen for this test."""
    settings = settings_factory(worker_metrics_port=free_port(), projection_metrics_port=free_port())
    asyncio.run(create_topics(settings))
    service_factory("worker", settings)
    service_factory("projection", settings)
    return settings


@pytest.fixture(scope="module")
def prometheus(pipeline: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    jobs = {job.name: job.job for job in load_spec(ROOT / SPEC_PATH).jobs}
    server = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"),
        targets={
            jobs["worker"]: f"127.0.0.1:{pipeline.worker_metrics_port}",
            jobs["projection"]: f"127.0.0.1:{pipeline.projection_metrics_port}",
        },
        rule_files=[ROOT / path for path in (RECORDING_RULES, SLO_ALERTS, SERVICE_ALERTS)],
    ).start()
    yield server
    server.stop()


async def _produce(settings: Settings, events: list[dict[str, Any]]) -> None:
    async with event_producer(settings) as producer:
        report = await producer.send_all(events)
    assert not report.failed, report.failed


async def _send_invalid(settings: Settings) -> int:
    bad = invalid_records()
    async with event_producer(settings) as producer:
        for value, _ in bad:
            await (await producer.send_raw(settings.topics.source(EventType.LEAD_CREATED), value, key=b"acme:bad"))
    return len(bad)


def _equals(server: PrometheusServer, promql: str, expected: float) -> Any:
    async def check() -> bool:
        return server.value(promql) == expected

    return check


async def test_sli_recording_rules_read_what_the_pipeline_did(pipeline: Settings, prometheus: PrometheusServer) -> None:
    started = time.monotonic()
    for job in ("salesflow-worker", "salesflow-projection"):
        await wait_for(_equals(prometheus, f'up{{job="{job}"}}', 1), timeout=30, what=f"{job} scraped")

    # Invalid records first: they prove the worker consumes, and count in no SLI.
    invalid = await _send_invalid(pipeline)
    await wait_for(
        _equals(prometheus, "sum(salesflow_dead_letters_total)", invalid),
        timeout=90,
        what="the dead letters in Prometheus",
    )
    warmup = warmup_events()
    await _produce(pipeline, warmup)
    await wait_for(
        _equals(prometheus, "sum(salesflow_events_processed_total)", len(warmup)),
        timeout=30,
        what="the warm-up in Prometheus",
    )

    load = Load()
    for _ in range(BATCHES):
        await _produce(pipeline, load.batch(LOAD_EVENTS // BATCHES))
        await asyncio.sleep(1)
    await wait_for(
        _equals(prometheus, "sum(salesflow_events_processed_total)", len(warmup) + LOAD_EVENTS),
        timeout=60,
        what="every outcome in Prometheus",
    )
    await asyncio.sleep(3)  # a few more scrapes and rule evaluations after the last event

    read = {
        q: prometheus.value(q)
        for q in (
            'slo:sli_error:ratio_rate5m{slo="processing-success"}',
            'slo:sli_error:ratio_rate5m{slo="freshness"}',
            'slo:sli_error:ratio_rate5m{slo="message-latency"}',
            'slo:sli_error:ratio_rate1h{slo="message-latency"}',
            'slo:error_budget_remaining:ratio{slo="processing-success"}',
            'slo:error_budget_remaining:ratio{slo="message-latency"}',
            "sum(salesflow_dead_letters_total)",
            "sum(salesflow_events_processed_total)",
            'sum(salesflow_events_consumed_total{job="salesflow-worker"})',
        )
    }
    alerts = prometheus.query('ALERTS{alertstate="firing"}')
    firing = {(a["metric"]["alertname"], a["metric"].get("severity")) for a in alerts}
    slow_share = load.slow / load.messages
    print(f"\nPromQL values read from Prometheus ({time.monotonic() - started:.1f}s after start):")
    for promql, value in read.items():
        print(f"  {promql} = {value}")
    print(f"  produced: {LOAD_EVENTS} events, {load.messages} messages, {load.slow} slow -> {slow_share:.4f}")
    print(f"  firing alerts: {sorted(firing)}")

    assert read['slo:sli_error:ratio_rate5m{slo="processing-success"}'] == 0  # nothing failed
    assert read['slo:error_budget_remaining:ratio{slo="processing-success"}'] == 1
    # Fresh events, processed within 5 s (a busy CI machine may let one straggle).
    freshness = read['slo:sli_error:ratio_rate5m{slo="freshness"}']
    assert freshness is not None and freshness <= 0.01
    # The share of slow messages, to within what rate()'s extrapolation and one stray warm-up
    # message can move it; a wrong bucket, or good and bad swapped, would be far off.
    assert read['slo:sli_error:ratio_rate5m{slo="message-latency"}'] == pytest.approx(slow_share, abs=0.01)
    assert read['slo:sli_error:ratio_rate1h{slo="message-latency"}'] == pytest.approx(slow_share, abs=0.01)
    latency_budget = read['slo:error_budget_remaining:ratio{slo="message-latency"}']
    assert latency_budget is not None and latency_budget < 0  # 25% slow overspends a 1% budget
    # 25% slow burns the 1% budget 25 times over on every window: page and ticket both fire.
    assert {("SalesflowMessageLatencyBudgetBurn", "page"), ("SalesflowMessageLatencyBudgetBurn", "ticket")} <= firing
    assert not {name for name, _ in firing} & {"SalesflowProcessingSuccessBudgetBurn", "SalesflowFreshnessBudgetBurn"}
    assert read["sum(salesflow_dead_letters_total)"] == invalid
    assert read['sum(salesflow_events_consumed_total{job="salesflow-worker"})'] == invalid + len(warmup) + LOAD_EVENTS
