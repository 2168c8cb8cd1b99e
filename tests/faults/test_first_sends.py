"""The first sends to brand-new topics on a freshly started broker: every record a producer we ship
saw acknowledged is on the topic when read back from the start.

Issue 28's loose end: the bench's warm-up once read back 399 of 400 (and "3 of 400 not final"). Each
round here creates a fresh set of topics and, at once, produces through the batch engine's producer,
the relay's, the demo's (aiokafka) and the bench's load generator, then reads every partition from
offset 0 to its high watermark and compares ids.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from bench.latency import produce_at
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics
from salesflow.kafka_clients import aiokafka_producer, librdkafka_options
from salesflow.outbox.publisher import Publisher, relay_producer_options
from salesflow.processor.engines.librdkafka import NO_OFFSET, delivery_problem, producer_config
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.envelope import encode, record_key
from salesflow.settings import Settings
from tests.faults.stack import DedicatedStack

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

# Rounds: a paced producer got a delivery without an offset in about 3 of 25 rounds here, so 12 rounds
# meet one most of the time; without the rule of `delivery_problem`, such a record is "acknowledged"
# and missing from the log (seen in CI: 1,599 of 1,600 read back).
ROUNDS = 12
PER_PRODUCER = 400  # the warm-up's size


@pytest.fixture(scope="module")
def fresh_broker() -> Iterator[DedicatedStack]:
    """A broker started for this module alone (the session's fault stack may be hours old)."""
    state_dir = Path(tempfile.mkdtemp(prefix="salesflow-first-sends-"))
    stack = DedicatedStack.under(state_dir)
    try:
        stack.start_broker()
        yield stack
    finally:
        gc.collect()  # the librdkafka producers go now, not after the broker (each would log refusals)
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def _events(seed: int) -> list[tuple[str, str, bytes, bytes]]:
    """(id, topic suffix, key, value) of ``PER_PRODUCER`` demo events."""
    return [(e["id"], e["type"], record_key(e), encode(e)) for e in DemoGenerator(seed=seed).events(PER_PRODUCER)]


Event = tuple[str, str, bytes, bytes]  # id, type, key, value


def _engine_producer(settings: Settings, seed: int) -> set[str]:
    """The batch engine's producer, with its rule (``delivery_problem``): a record delivered without an
    offset is not known to be on the log, so it counts as not delivered and is sent again (the engine
    stops without committing past it and sends it after its restart)."""
    acked: set[str] = set()
    unproven: list[Event] = []

    def delivered(event: Event, error: KafkaError | None, message: Message) -> None:
        problem = delivery_problem(error, message)
        if problem is None:
            acked.add(event[0])
        elif problem == NO_OFFSET:
            unproven.append(event)

    producer = Producer(producer_config(settings, lambda error: None))
    pending = _events(seed)
    for _ in range(4):
        for event in pending:
            topic = settings.topics.source(EventType(event[1]))
            producer.produce(topic, event[3], event[2], on_delivery=functools.partial(delivered, event))
            producer.poll(0)
        producer.flush(60)
        if unproven:
            print(f"[first-sends] engine producer: {len(unproven)} delivered without an offset, sent again")
        pending, unproven[:] = list(unproven), []
        if not pending:
            break
    producer.close()
    return acked


def _relay_producer(settings: Settings, seed: int) -> set[str]:
    events = _events(seed)
    rows = [
        (n, settings.topics.source(EventType(kind)), key, value, '[["content-type", "application/cloudevents+json"]]')
        for n, (_, kind, key, value) in enumerate(events)
    ]
    publisher = Publisher(relay_producer_options(settings, 30.0))
    try:
        result = publisher.publish(rows, timeout=60)
    finally:
        publisher.close(5)
    return {events[n][0] for n in result.acknowledged}


async def _demo_producer(settings: Settings, seed: int) -> set[str]:
    producer = aiokafka_producer(settings)
    await producer.start()
    try:
        sent = [
            (event_id, await producer.send(settings.topics.source(EventType(kind)), value, key=key))
            for event_id, kind, key, value in _events(seed)
        ]
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
    finally:
        await producer.stop()
    return {event_id for (event_id, _), result in zip(sent, results, strict=True) if not isinstance(result, Exception)}


async def _bench_producer(settings: Settings, seed: int) -> set[str]:
    ids, _ = await produce_at(settings, PER_PRODUCER // 2, 2.0, seed=seed)  # raises unless all acknowledged
    return set(ids)


def read_back(settings: Settings) -> list[str]:
    """Every event id on the four source topics, from offset 0 to the high watermark."""
    consumer = Consumer({**librdkafka_options(settings), "group.id": f"readback-{uuid.uuid4().hex[:6]}"})
    try:
        wanted = []
        for event_type in EventType:
            topic = settings.topics.source(event_type)
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
                if high > 0:
                    wanted.append((TopicPartition(topic, partition, 0), high))
        consumer.assign([tp for tp, _ in wanted])
        ends = {(tp.topic, tp.partition): high for tp, high in wanted}
        ids: list[str] = []
        while ends:
            message = consumer.poll(5)
            assert message is not None, f"no record read while waiting for {ends}"
            assert message.error() is None, message.error()
            ids.append(orjson.loads(message.value() or b"{}")["id"])
            if (message.offset() or 0) + 1 >= ends.get((message.topic() or "", message.partition() or 0), 1 << 62):
                del ends[(message.topic() or "", message.partition() or 0)]
        return ids
    finally:
        consumer.close()


async def test_first_sends_to_new_topics_are_all_read_back(fresh_broker: DedicatedStack) -> None:
    for round_ in range(ROUNDS):
        settings = Settings(
            kafka_bootstrap_servers=fresh_broker.bootstrap,
            topic_prefix=f"first{round_}{uuid.uuid4().hex[:6]}.",
            topic_partitions=6,
        )
        await create_topics(settings)
        # At once, straight after creation: the window in which the warm-up was seen short.
        acked = await asyncio.gather(
            asyncio.to_thread(_engine_producer, settings, 10 + round_),
            asyncio.to_thread(_relay_producer, settings, 20 + round_),
            _demo_producer(settings, 30 + round_),
            _bench_producer(settings, 40 + round_),
        )
        acknowledged = set().union(*acked)
        ids = await asyncio.to_thread(read_back, settings)
        print(f"[first-sends] round {round_}: acknowledged={len(acknowledged)} read_back={len(ids)}", flush=True)
        assert all(len(a) == PER_PRODUCER for a in acked), [len(a) for a in acked]
        assert acknowledged - set(ids) == set(), f"acknowledged but not on the topic: {acknowledged - set(ids)}"
        assert len(ids) == len(set(ids)), "a record was written twice"
