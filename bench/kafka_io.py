"""Kafka for the benchmark: load the source topics, read ranges back, and the raw-consume limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as ConfluentPartition

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType
from salesflow.errors import InvalidEvent
from salesflow.kafka_clients import aiokafka_producer, client_options, librdkafka_options
from salesflow.processor.engines.librdkafka import record_in
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.envelope import encode, record_key
from salesflow.settings import Settings

Offsets = dict[TopicPartition, int]


@dataclass(frozen=True)
class Loaded:
    events: int
    bytes: int

    @property
    def mean_bytes(self) -> float:
        return self.bytes / self.events if self.events else 0.0


async def preload(settings: Settings, count: int, seed: int = 7) -> Loaded:
    """Put ``count`` demo events (the realistic mix of the four types) on the source topics."""
    producer = aiokafka_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    size = 0
    try:
        pending = []
        for event in DemoGenerator(seed=seed).events(count):
            value = encode(event)
            size += len(value)
            topic = settings.topics.source(EventType(event["type"]))
            pending.append(await producer.send(topic, value, key=record_key(event)))
            if len(pending) >= 5000:  # bounded: the producer's buffer, not our memory, takes the burst
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return Loaded(events=count, bytes=size)


def consumer(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A group-less consumer (assigned partitions, nothing committed)."""
    return AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False, group_id=None, **options)


def partitions(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of these topics (the benchmark creates all of its topics with the same count)."""
    return [TopicPartition(topic, p) for topic in topics for p in range(settings.topic_partitions)]


async def end_offsets(settings: Settings, topics: Iterable[str]) -> Offsets:
    tps = partitions(settings, topics)
    probe = consumer(settings)
    await probe.start()
    try:
        return dict(await probe.end_offsets(tps))
    finally:
        await probe.stop()


async def raw_consume(settings: Settings, count: int) -> float:
    """The raw limit: a bare aiokafka consumer reads ``count`` source records, no decoding. Events/s
    from the first record to the last (connection and metadata excluded, like the processor's)."""
    tps = partitions(settings, settings.topics.sources)
    reader = consumer(settings)
    await reader.start()
    try:
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        seen, started = 0, time.perf_counter()  # connected and assigned: from the first fetch on
        while seen < count:
            batches = await reader.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batches.values())
        return seen / (time.perf_counter() - started)
    finally:
        await reader.stop()


def librdkafka_consume(settings: Settings, count: int, *, validate: bool, timeout: float) -> float:
    """A bare confluent-kafka (librdkafka) consumer reads ``count`` source records: the batch
    engine's own client, so its raw limit. ``validate``: each record also goes through the envelope
    contract's decoding and validation (``decode_event``, the pydantic models of ``domain.events``),
    and nothing else: no handler, no record out, no commit. That is the floor of any worker that
    validates every event against the contract, whatever it does next. Events/s after the first
    batch: it waits for the connection and metadata, so it is left out of both the time and the
    count. Blocking: call it from a thread."""
    reader = Consumer(
        {
            **librdkafka_options(settings),
            "group.id": f"bench-floor-{uuid.uuid4()}",  # assigned partitions, nothing committed
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        reader.assign(
            [
                ConfluentPartition(tp.topic, tp.partition, OFFSET_BEGINNING)
                for tp in partitions(settings, settings.topics.sources)
            ]
        )
        per_batch = max(1, min(1000, count // 10))  # a small run still has batches after the first
        seen, counted_from, started = 0, 0, 0.0
        deadline = time.monotonic() + timeout
        while seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {seen} of {count} source records")
            batch = reader.consume(per_batch, 1.0)
            for message in batch:
                if message.error() is not None:
                    raise RuntimeError(f"consume error: {message.error()}")
                if validate:
                    with contextlib.suppress(InvalidEvent):  # a refusal costs too; the demo mix has none
                        record = record_in(message)  # the batch engine's own conversion
                        decode_event(record.value, record.headers, max_bytes=settings.max_event_bytes)
            if batch and not counted_from:  # the clock starts once the first batch is in
                counted_from, started = len(batch), time.perf_counter()
            seen += len(batch)
        return (seen - counted_from) / (time.perf_counter() - started)
    finally:
        reader.close()


async def read_range(settings: Settings, start: Offsets, stop: Offsets) -> list[Any]:
    """Every record in [start, stop) of the given partitions."""
    wanted = {tp: stop[tp] for tp in stop if stop[tp] > start.get(tp, 0)}
    reader = consumer(settings)
    await reader.start()
    records: list[Any] = []
    try:
        reader.assign(list(wanted))
        for tp in wanted:
            reader.seek(tp, start.get(tp, 0))
        while wanted:
            for tp, batch in (await reader.getmany(timeout_ms=1000)).items():
                records += [r for r in batch if r.offset < stop[tp]]
                if tp in wanted and await reader.position(tp) >= stop[tp]:
                    del wanted[tp]
                    reader.pause(tp)
        return records
    finally:
        await reader.stop()


async def count_until(
    settings: Settings, topic: str, start: Offsets, count: int, timeout: float
) -> tuple[int, int, int]:
    """Wait until ``count`` records past ``start`` are on ``topic``; return (count, first_ts, last_ts),
    the records' own timestamps (ms, set by the producing client when it sent them)."""
    tps = [tp for tp in start if tp.topic == topic]
    reader = consumer(settings)
    await reader.start()
    try:
        reader.assign(tps)
        for tp in tps:
            reader.seek(tp, start[tp])
        seen, first, last = 0, 2**63, 0
        deadline = time.monotonic() + timeout
        while seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {seen} of {count} records on {topic} after {timeout:.0f}s")
            for batch in (await reader.getmany(timeout_ms=500)).values():
                seen += len(batch)
                first = min(first, min(r.timestamp for r in batch))
                last = max(last, max(r.timestamp for r in batch))
        return seen, first, last
    finally:
        await reader.stop()


async def copy_records(settings: Settings, records: list[Any], topic_of: dict[str, str]) -> None:
    """Re-publish records (same key, value, headers and partition) on other topics."""
    producer = aiokafka_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        pending = []
        for r in records:
            pending.append(
                await producer.send(
                    topic_of[r.topic], r.value, key=r.key, partition=r.partition, headers=list(r.headers or ()) or None
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
