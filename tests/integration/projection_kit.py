"""Helpers for the projection's tests: crafted records written straight onto the topics the projection
reads (sources, outcomes, dead letters), and the projection run in this process against the real
broker and database, so its metrics and its stop can be observed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow import bootstrap
from salesflow.domain.events import EventType
from salesflow.kafka_clients import aiokafka_producer, client_options
from salesflow.metrics import PipelineMetrics
from salesflow.producer.envelope import encode
from salesflow.projection.service import Projection
from salesflow.settings import Settings


@dataclass(frozen=True)
class Sent:
    """Where a crafted record landed, and its bytes."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


def outcome_of(event: dict[str, Any], *, facts: list[dict[str, Any]] | None = None, **override: Any) -> dict[str, Any]:
    """The outcome record the worker writes for ``event`` (as JSON), with a funnel fact by default."""
    event_id, tenant, lead = event["id"], event["tenantid"], event["data"]["lead_id"]
    base = {"event_id": event_id, "tenant_id": tenant, "lead_id": lead, "occurred_at": event["time"]}
    outcome = {
        **base,
        "type": event["type"],
        "status": "processed",
        "processed_at": datetime.now(UTC).isoformat(),
        "attempts": 1,
        "error_message": None,
        "replay": False,
        "position": {"topic": "crafted", "partition": 0, "offset": 0},
        "handlers": [],
        "facts": [{**base, "kind": "funnel", "stage": "created"}] if facts is None else facts,
    }
    return {**outcome, **override}


def fact(event: dict[str, Any], kind: str, **columns: Any) -> dict[str, Any]:
    """A fact of ``event`` with the columns given."""
    base = {"event_id": event["id"], "tenant_id": event["tenantid"], "lead_id": event["data"]["lead_id"]}
    return {**base, "occurred_at": event["time"], "kind": kind, **columns}


class Topics:
    """Crafted records onto the projection's topics, all on partition 0 so their order is known."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = aiokafka_producer(settings)

    async def __aenter__(self) -> Topics:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(
        self, topic: str, value: bytes | None, headers: list[tuple[str, bytes]] | None = None, key: bytes = b"k"
    ) -> Sent:
        meta = await (await self.producer.send(topic, value, key=key, partition=0, headers=headers))
        return Sent(topic, meta.partition, meta.offset, value)

    async def source(self, event: dict[str, Any]) -> Sent:
        return await self.send(self.settings.topics.source(EventType(event["type"])), encode(event))

    async def outcome(self, outcome: dict[str, Any] | bytes) -> Sent:
        value = outcome if isinstance(outcome, bytes) else orjson.dumps(outcome)
        return await self.send(self.settings.topics.outcomes, value)

    async def dead_letter(self, value: bytes, headers: list[tuple[str, bytes]]) -> Sent:
        return await self.send(self.settings.topics.deadletter, value, headers)


@contextlib.asynccontextmanager
async def running_projection(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Projection]:
    """The projection running in this process until the block ends (then stopped, as SIGTERM does)."""
    projection = Projection(
        settings=settings, engine=engine, metrics=PipelineMetrics(), consumer=bootstrap.projection_consumer(settings)
    )
    task = asyncio.create_task(projection.run())
    try:
        yield projection
    finally:
        projection.stop()
        await asyncio.wait_for(task, timeout=60)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(text(sql), params)]


async def rejected(engine: AsyncEngine, settings: Settings) -> dict[tuple[str, int, int], dict[str, Any]]:
    """This test's rejected records by position."""
    found = await rows(engine, "SELECT * FROM rejected_records WHERE topic LIKE :p", p=f"{settings.topic_prefix}%")
    return {(r["topic"], r["partition"], r["offset"]): r for r in found}


async def event_rows(engine: AsyncEngine, ids: list[str]) -> dict[str, dict[str, Any]]:
    found = await rows(engine, "SELECT * FROM events WHERE id = ANY(:ids)", ids=[UUID(i) for i in ids])
    return {str(r["id"]): r for r in found}


async def committed_to_end(settings: Settings) -> bool:
    """Every partition of the projection's topics committed up to its end offset."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=settings.projection_group)
    await consumer.start()
    try:
        topics = [*settings.topics.sources, settings.topics.outcomes, settings.topics.deadletter]
        parts = [TopicPartition(t, p) for t in topics for p in range(settings.topic_partitions)]
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            committed = await consumer.committed(tp)
            if ends[tp] and (committed or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()
