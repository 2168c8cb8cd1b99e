"""The outbox through the whole pipeline (relay -> source topics -> worker -> projection): Kafka out of
reach while a service commits thousands of leads, and the relay SIGKILLed three times mid-batch. Every
committed event ends ``processed``; none is lost; no fact is counted twice."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import Counter
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.kafka_admin import create_topics
from salesflow.producer.demo import DemoGenerator
from salesflow.settings import Settings
from tests.conftest import SettingsFactory
from tests.faults.checker import Verdict, check, final_ids
from tests.harness import wait_for
from tests.integration.test_outbox_kit import (
    BATCH_SIZE_OVERRIDE,
    DeleteBarrier,
    Relay,
    Relays,
    commit_events,
    outbox_rows,
    received,
    typed,
    wait_drained,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pipeline(settings_factory: SettingsFactory, service_factory: Any) -> Settings:
    settings = settings_factory()
    await create_topics(settings)
    service_factory("worker", settings)
    service_factory("projection", settings)
    return settings


def workload(count: int) -> dict[str, dict[str, Any]]:
    """``count`` demo events (leads interleaved, each lead's journey in order), by id."""
    return {event["id"]: event for event in DemoGenerator(seed=random.randrange(1 << 30)).events(count)}


async def settle(engine: AsyncEngine, events: dict[str, dict[str, Any]]) -> Verdict:
    ids = [UUID(i) for i in events]

    async def all_final() -> bool:
        return len(await final_ids(engine, ids)) == len(ids)

    await wait_for(all_final, timeout=240, every=1.0, what="every committed event to be final")
    return await check(engine, events, set(events))


def assert_clean(verdict: Verdict) -> None:
    assert verdict.acknowledged > 0
    assert (verdict.lost, verdict.duplicates, verdict.missing_facts, verdict.wrong_status) == (0, 0, 0, 0)
    assert verdict.cost_recorded == pytest.approx(verdict.cost_expected, abs=1e-3)


def relay_batch_size(chosen: int) -> int:
    """The batch size the relays of this run use (the suite's override, where one is set)."""
    return int(BATCH_SIZE_OVERRIDE) if BATCH_SIZE_OVERRIDE else chosen


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_kafka_out_of_reach_while_a_service_commits_thousands_of_leads(
    pipeline: Settings, service: tuple[str, AsyncEngine], relays: Relays, engine: AsyncEngine
) -> None:
    url, service_engine = service
    events = workload(3000)
    unreachable = pipeline.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{closed_port()}"})
    cut_off = relays.start(unreachable, url, message_timeout_seconds=3)
    await cut_off.wait_for_log("outbox relay: leader")

    started = time.monotonic()
    typed_events = [typed(e) for e in events.values()]
    for n in range(0, len(typed_events), 300):  # about 10 s of commits, Kafka out of reach throughout
        await commit_events(service_engine, pipeline, typed_events[n : n + 300], per_txn=25)
        await asyncio.sleep(max(0.0, started + (n + 300) / 300 - time.monotonic()))
    await wait_for(lambda: _logged(cut_off, "not acknowledged"), timeout=30, what="the relay to report the outage")
    assert await outbox_rows(url) == len(events), "nothing may leave the outbox without an acknowledgement"
    assert cut_off.stop() == 0, cut_off.log_tail()
    outage = time.monotonic() - started

    relays.start(pipeline, url)  # Kafka is back (for the relay: it is the reachable broker now)
    await wait_drained(url)
    verdict = await settle(engine, events)
    print(verdict.line("outbox, Kafka out of reach", events=len(events), outage_s=f"{outage:.1f}"))
    assert_clean(verdict)


async def _logged(relay: Relay, text: str) -> bool:
    return relay.times_logged(text) > 0


async def test_relay_sigkilled_three_times_mid_batch(
    pipeline: Settings, service: tuple[str, AsyncEngine], relays: Relays, engine: AsyncEngine
) -> None:
    """Each kill lands by construction (a ``DeleteBarrier``), not by timing: the relay has published a
    batch, every record is acknowledged, and its ``DELETE`` waits. The next relay sends that batch again."""
    url, service_engine = service
    events = workload(6000)
    await commit_events(service_engine, pipeline, [typed(e) for e in events.values()], per_txn=100)
    barrier = DeleteBarrier(url)
    batch_size = 500
    for _ in range(3):
        # Mid-way into the relay's second batch (or its first, when fewer rows are left): a batch before
        # it is published and deleted as usual.
        await barrier.hold(offset=relay_batch_size(batch_size) * 3 // 2)
        relay = relays.start(pipeline, url, batch_size=batch_size)
        waiting = await barrier.relay_waiting()
        relay.kill()
        await barrier.release(waiting)
    relays.start(pipeline, url, batch_size=batch_size)
    await wait_drained(url)
    verdict = await settle(engine, events)
    records = await received(pipeline, expected=len(events), settle=3.0)
    copies = Counter(r.event["id"] for r in records if r.event["id"] in events)
    assert set(copies) == set(events)
    # Every kill landed between the acknowledgement and the DELETE: the held row's record went out twice.
    assert len(barrier.held) == 3 and all(copies[held] >= 2 for held in barrier.held)
    print(
        verdict.line(
            "outbox relay SIGKILL x3",
            events=len(events),
            records_on_kafka=sum(copies.values()),
            published_twice=sum(1 for n in copies.values() if n > 1),
        )
    )
    assert_clean(verdict)
