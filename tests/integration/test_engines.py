"""Both engines on the real broker: records just under the broker's 1 MiB limit (issue 11, defect 3),
and the batch engine under both consumer group protocols."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from salesflow.bootstrap import build_processor
from salesflow.domain import records as r
from salesflow.domain.events import EventType
from salesflow.domain.outcome import Outcome
from salesflow.kafka_admin import create_topics, read_topic
from salesflow.kafka_clients import aiokafka_producer, client_options
from salesflow.metrics import PipelineMetrics
from salesflow.processor.engines.librdkafka_engine import LibrdkafkaEngine
from salesflow.processor.outbound import DLQ_ORIGINAL_SHA256, DLQ_ORIGINAL_SIZE, DLQ_TRUNCATED
from salesflow.producer.envelope import encode
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import wait_for

pytestmark = pytest.mark.integration

# The broker's default `message.max.bytes` is 1,048,588 per record batch; this leaves room for framing.
NEAR_LIMIT = 1_048_200


PAD_CHUNK = 60_000  # under the contract's 65,536-character limit for an extra field's string


def padded(event: dict[str, Any], size: int) -> bytes:
    """``event`` with extra (unknown, so accepted) fields that bring it to exactly ``size`` bytes: a list
    of strings, each within the contract's limit for an extra string, the last one cut to fit."""
    chunks = ["x" * PAD_CHUNK] * ((size // PAD_CHUNK) + 1)
    while len(encode({**event, "padding": chunks})) > size:
        chunks.pop()
    base = len(encode({**event, "padding": [*chunks, ""]}))
    value = encode({**event, "padding": [*chunks, "x" * (size - base)]})
    assert len(value) == size
    return value


@asynccontextmanager
async def producer_for(settings: Settings) -> AsyncIterator[Any]:
    # The project's producer, allowed a request as large as the broker takes.
    producer = aiokafka_producer(settings, max_request_size=1_048_576 + 1024)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def dead_letters(settings: Settings, count: int) -> list[Any]:
    """The first ``count`` records of the dead-letter topic, headers included."""
    consumer = AIOKafkaConsumer(
        settings.topics.deadletter,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    found: list[Any] = []
    try:

        async def enough() -> bool:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(batch)
            return len(found) >= count

        await wait_for(enough, timeout=90, what=f"{count} dead letters")
    finally:
        await consumer.stop()
    return found


async def outcome_ids(settings: Settings) -> set[str]:
    return {
        str(msgspec.json.decode(v or b"", type=Outcome).event_id)
        for _, v in await read_topic(settings, settings.topics.outcomes)
    }


@pytest.mark.parametrize("max_event_bytes", [None, 2 * 1024 * 1024], ids=["default-limit", "limit-above-1MiB"])
async def test_a_record_just_under_the_broker_limit_is_dead_lettered_cut_and_the_stream_goes_on(
    settings_factory: SettingsFactory, service_factory: Any, max_event_bytes: int | None
) -> None:
    settings = settings_factory(**({"max_event_bytes": max_event_bytes} if max_event_bytes else {}))
    await create_topics(settings)
    worker = service_factory("worker", settings)
    topic = settings.topics.source(EventType.LEAD_CREATED)
    lead = event_dict(EventType.LEAD_CREATED)
    huge_invalid = padded({**lead, "type": "lead.teleported"}, NEAR_LIMIT)  # unknown type, near the limit
    huge_valid = padded(event_dict(EventType.LEAD_CREATED), NEAR_LIMIT)
    after = [event_dict(EventType.LEAD_CREATED, lead_id=f"after-{n}") for n in range(3)]
    async with producer_for(settings) as producer:
        await (await producer.send(topic, huge_invalid, key=b"acme:huge", headers=[("trace", b"t-1")]))
        await (await producer.send(topic, huge_valid, key=b"acme:huge-valid"))
        for event in after:
            await (await producer.send(topic, encode(event), key=b"acme:after"))

    expected_ids = {e["id"] for e in after}
    if max_event_bytes:  # processed: a valid event's unknown fields are accepted, whatever their size
        expected_ids.add(orjson.loads(huge_valid)["id"])
    await wait_for(lambda: _has(settings, expected_ids), timeout=90, what="the events after the huge ones")
    letters = await dead_letters(settings, 1 if max_event_bytes else 2)
    dead = letters[0]
    headers = dict(dead.headers)
    reason = b"unknown_type" if max_event_bytes else b"too_large"
    assert headers[r.DLQ_REASON] == reason and dead.key == b"acme:huge"
    assert headers[DLQ_TRUNCATED] == b"value" and headers["trace"] == b"t-1"  # its own headers kept
    assert headers[DLQ_ORIGINAL_SIZE] == str(NEAR_LIMIT).encode()
    assert headers[DLQ_ORIGINAL_SHA256] == hashlib.sha256(huge_invalid).hexdigest().encode()
    assert 0 < len(dead.value) < 100_000 and huge_invalid.startswith(dead.value)
    assert worker.running, "the worker must not crash-loop on an oversized dead letter"


async def _has(settings: Settings, ids: set[str]) -> bool:
    return ids <= await outcome_ids(settings)


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
async def test_the_batch_engine_processes_under_both_group_protocols(
    settings_factory: SettingsFactory, service_factory: Any, worker_engine: str, protocol: str
) -> None:
    if worker_engine != "batch":
        pytest.skip("the group protocol setting is the batch engine's (Faust speaks classic only)")
    settings = settings_factory(kafka_group_protocol=protocol)
    await create_topics(settings)
    service_factory("worker", settings)
    service_factory("worker", settings)  # two members: the group must share the partitions
    events = [event_dict(t, lead_id=f"lead-{n}") for n in range(20) for t in EventType]
    async with producer_for(settings) as producer:
        for event in events:
            await producer.send(settings.topics.source(EventType(event["type"])), encode(event), key=b"acme:k")
        await producer.flush()
    await wait_for(lambda: _has(settings, {e["id"] for e in events}), timeout=120, what="every outcome")


async def test_an_idle_batch_engine_hands_over_a_record_at_once_not_after_the_batch_time(
    settings_factory: SettingsFactory, worker_engine: str
) -> None:
    """A batch is what has arrived, up to its size: an idle worker does not hold a lone record until
    the batch fills or its time is up (at a low rate, that was most of every record's latency)."""
    if worker_engine != "batch":
        pytest.skip("the batch engine's read (Faust's take waits out its window by design)")
    batch_seconds = 30.0
    settings = settings_factory(processor_batch_seconds=batch_seconds)
    await create_topics(settings)
    engine = LibrdkafkaEngine(settings, build_processor(settings, PipelineMetrics()))
    try:
        engine.consumer.subscribe(list(settings.topics.sources))

        async def assigned() -> bool:
            await asyncio.to_thread(engine.consumer.poll, 0.5)  # the topics are empty: joins, reads nothing
            return bool(engine.consumer.assignment())

        await wait_for(assigned, timeout=60, what="the partitions assigned")
        event = event_dict(EventType.LEAD_CREATED)
        async with producer_for(settings) as producer:
            await (await producer.send(settings.topics.source(EventType.LEAD_CREATED), encode(event), key=b"a:1"))
        started = time.monotonic()
        batch = await asyncio.to_thread(engine._read)
        waited = time.monotonic() - started
        assert [orjson.loads(m.value() or b"")["id"] for m in batch] == [event["id"]]
        assert waited < batch_seconds / 2, f"the record was held {waited:.1f}s of a {batch_seconds:.0f}s batch time"
    finally:
        engine.consumer.close()
        engine._loop.close()
