"""Topic administration: create the pipeline's topics, idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from salesflow.kafka_clients import client_options
from salesflow.settings import Settings


@dataclass(frozen=True)
class TopicPlan:
    created: list[str]
    existing: list[str]


async def create_topics(settings: Settings, *, partitions: int | None = None, replication: int | None = None) -> TopicPlan:
    """Create every topic that is missing; leave existing ones as they are."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = settings.topics.all
        missing = [t for t in wanted if t not in existing]
        if missing:
            await admin.create_topics([
                NewTopic(
                    name=topic,
                    num_partitions=partitions or settings.topic_partitions,
                    replication_factor=replication or settings.topic_replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if topic in settings.topics.compacted else {},
                )
                for topic in missing
            ])
        return TopicPlan(created=missing, existing=[t for t in wanted if t in existing])
    finally:
        await admin.close()
