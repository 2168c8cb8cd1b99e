"""Issue 11, defect 7: producers outside our code place `<tenant>:<lead>` keys where ours does.

Our producer (aiokafka) partitions keys with murmur2, as Java's client does. librdkafka's clients (kcat,
confluent-kafka) hash with CRC32 unless told `partitioner=murmur2_random`; the docs say so
(docs/how-to/produce-events.md), and their kcat line is run here as written, on the real broker.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Message, Producer

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics
from salesflow.kafka_clients import aiokafka_producer, client_options
from salesflow.settings import Settings
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.integration

# The how-to that shows the kcat line (moved there from the README with the docs site, issue 29).
HOW_TO = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "produce-events.md"
PARTITIONS = 12
KEYS = [f"tenant-{t}:lead-{n}" for t in range(6) for n in range(50)]


@pytest.fixture
async def settings(settings_factory: SettingsFactory) -> Settings:
    made = settings_factory(topic_partitions=PARTITIONS)
    await create_topics(made)
    return made


async def ours(settings: Settings, topic: str, keys: list[str]) -> dict[str, int]:
    """The partition our producer puts each key on."""
    producer = aiokafka_producer(settings)
    await producer.start()
    try:
        return {key: (await producer.send_and_wait(topic, b"ours", key=key.encode())).partition for key in keys}
    finally:
        await producer.stop()


def confluent(settings: Settings, topic: str, keys: list[str], **config: str) -> dict[str, int]:
    """The partition confluent-kafka puts each key on, from its delivery reports."""
    placed: dict[str, int] = {}

    def delivered(error: object, message: Message) -> None:
        assert error is None, error
        placed[(message.key() or b"").decode()] = message.partition() or 0

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all", **config})
    for key in keys:
        producer.produce(topic, value=b"confluent", key=key, on_delivery=delivered)
    assert producer.flush(30) == 0
    return placed


def kcat(settings: Settings, topic: str, keys: list[str]) -> None:
    lines = "".join(f"{key}\tkcat\n" for key in keys)
    command = ["kcat", "-P", "-b", settings.kafka_bootstrap_servers, "-t", topic, "-K", "\t"]
    subprocess.run([*command, "-X", "partitioner=murmur2_random"], input=lines.encode(), check=True, timeout=60)


async def placed_by(settings: Settings, topic: str, value: bytes) -> dict[str, int]:
    """Where the records with ``value`` went, read back from the topic: key -> partition."""
    return {r.key.decode(): r.partition for r in await read_all(settings, topic) if r.value == value and r.key}


async def test_librdkafka_clients_with_murmur2_random_place_keys_as_our_producer(settings: Settings) -> None:
    topic = settings.topics.source(EventType.LEAD_CREATED)
    expected = await ours(settings, topic, KEYS)
    assert len(set(expected.values())) == PARTITIONS  # the keys spread over every partition
    await asyncio.to_thread(kcat, settings, topic, KEYS)
    assert await placed_by(settings, topic, b"kcat") == expected
    assert await asyncio.to_thread(confluent, settings, topic, KEYS, partitioner="murmur2_random") == expected
    default = await asyncio.to_thread(confluent, settings, topic, KEYS)
    moved = sum(default[key] != expected[key] for key in KEYS)
    assert moved > len(KEYS) // 2, "without the setting, librdkafka's CRC32 puts most keys elsewhere"


def readme_kcat_line() -> str:
    section = HOW_TO.read_text().split("**Producing from any client.**", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the how-to's 'From any Kafka client' section has a kcat example"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("echo '{"), "one line, pasteable as it is"
    return lines[0]


async def test_the_readmes_kcat_line_works_when_pasted(settings: Settings) -> None:
    line = readme_kcat_line()
    topic = settings.topics.source(EventType.LEAD_CREATED)
    event_id = str(uuid4())
    # Only where it goes changes: this test's broker and topic, and a fresh id.
    line = line.replace("127.0.0.1:39092", settings.kafka_bootstrap_servers).replace("salesflow.leads.v1", topic)
    line = re.sub(r'"id":"[0-9a-f-]{36}"', f'"id":"{event_id}"', line)
    await asyncio.to_thread(subprocess.run, ["bash", "-c", line], check=True, timeout=60)
    records = await read_all(settings, topic)
    assert len(records) == 1, "one record, not one per line"
    record = records[0]
    event = decode_event(record.value, list(record.headers), max_bytes=settings.max_event_bytes)
    assert (str(event.id), event.key) == (event_id, record.key.decode())
    assert dict(record.headers) == {"content-type": b"application/cloudevents+json"}
    assert (await ours(settings, topic, [event.key]))[event.key] == record.partition
    assert orjson.loads(record.value)["data"] == {"lead_id": "l-1", "source": "api"}


async def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic``, from the beginning to its current end."""
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()
