"""Topic administration: create the pipeline's topics (idempotently), describe and read small topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from salesflow.errors import SalesflowError
from salesflow.kafka_clients import client_options
from salesflow.settings import Settings


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed when the block ends."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def plain_consumer(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of no group (it commits nothing), stopped when the block ends."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class TopicPlan:
    created: list[str]
    existing: list[str]


async def create_topics(
    settings: Settings, *, partitions: int | None = None, replication: int | None = None
) -> TopicPlan:
    """Create every topic that is missing; leave existing ones as they are."""
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())
        wanted = settings.topics.all
        missing = [t for t in wanted if t not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=topic,
                        num_partitions=partitions or settings.topic_partitions,
                        replication_factor=replication or settings.topic_replication_factor,
                        topic_configs={"cleanup.policy": "compact"} if topic in settings.topics.compacted else {},
                    )
                    for topic in missing
                ]
            )
        return TopicPlan(created=missing, existing=[t for t in wanted if t in existing])


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``; a clear error when it does not exist."""
    async with admin_client(settings) as admin:
        [described] = await admin.describe_topics([topic])
    if described["error_code"] != 0 or not described["partitions"]:
        raise SalesflowError(
            f"topic {topic!r} does not exist (error {described['error_code']}): run `salesflow topics create`"
        )
    return [
        TopicPartition(topic, p["partition"]) for p in sorted(described["partitions"], key=lambda p: p["partition"])
    ]


async def existing_partitions(settings: Settings) -> dict[str, set[int]]:
    """Every topic the cluster has now, with its partitions. All topics are asked for: a metadata
    request that names a topic creates it on a cluster that auto-creates topics."""
    async with admin_client(settings) as admin:
        described = await admin.describe_topics()
    return {d["topic"]: {p["partition"] for p in d["partitions"]} for d in described if d["error_code"] == 0}


async def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record (key, value) of a small topic, from the beginning to its current end."""
    partitions = await topic_partitions(settings, topic)
    async with plain_consumer(settings) as consumer:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[bytes | None, bytes | None]] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend((r.key, r.value) for r in batch)
        return records


async def wait_for_leaders(settings: Settings, timeout: float) -> list[str]:
    """Wait until every partition of the pipeline's topics has a leader that answers for it; the
    topics still without one when ``timeout`` runs out (none: all ready). The metadata names a leader
    a moment before that broker serves the partition, so its log end offset is asked for too (a
    leader-only request): producing before that only earns retries and warnings."""
    deadline = time.monotonic() + timeout
    async with admin_client(settings) as admin, plain_consumer(settings) as consumer:
        while True:
            described = await admin.describe_topics(settings.topics.all)
            leaderless = [t["topic"] for t in described if not _has_leaders(t)]
            if not leaderless:
                partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
                await asyncio.wait_for(consumer.end_offsets(partitions), max(deadline - time.monotonic(), 1))
                return []
            if time.monotonic() > deadline:
                return leaderless
            await asyncio.sleep(0.2)


def _has_leaders(topic: dict[str, Any]) -> bool:
    partitions = topic["partitions"]
    return topic["error_code"] == 0 and bool(partitions) and all(p["leader"] >= 0 for p in partitions)
