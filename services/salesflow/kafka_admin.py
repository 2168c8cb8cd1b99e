"""Topic administration: create the pipeline's topics (idempotently), describe and read small topics."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from salesflow.errors import SalesflowError
from salesflow.kafka_clients import client_options
from salesflow.settings import Settings


@dataclass(frozen=True)
class TopicPlan:
    created: list[str]
    existing: list[str]


async def create_topics(
    settings: Settings, *, partitions: int | None = None, replication: int | None = None
) -> TopicPlan:
    """Create every topic that is missing; leave existing ones as they are."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
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
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``; a clear error when it does not exist."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
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
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {d["topic"]: {p["partition"] for p in d["partitions"]} for d in described if d["error_code"] == 0}


async def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record (key, value) of a small topic, from the beginning to its current end."""
    partitions = await topic_partitions(settings, topic)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[bytes | None, bytes | None]] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend((r.key, r.value) for r in batch)
        return records
    finally:
        await consumer.stop()
