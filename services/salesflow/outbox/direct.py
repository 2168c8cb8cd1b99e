"""The direct bus, for services without a database: each publish waits for the broker's ack.

Without an outbox there is no transaction to join: call ``publish`` after your own state change is
durable, and on ``PublishFailed`` publish the same event again (same id: downstream dedupes by id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from salesflow.domain.topics import Topics
from salesflow.kafka_clients import aiokafka_producer
from salesflow.outbox.bus import OutboxRow, traced_row
from salesflow.outbox.bus_errors import PublishFailed, PublishTimeout
from salesflow.producer.typed_events import ProducerEvent
from salesflow.settings import Settings


class DirectEventBus:
    """Publishes through an idempotent ``acks=all`` producer, awaiting the ack for ``timeout`` seconds."""

    def __init__(self, producer: AIOKafkaProducer, topics: Topics, timeout: float = 10.0) -> None:
        self._producer = producer
        self._topics = topics
        self.timeout = timeout

    async def publish(self, event: ProducerEvent, *, request_id: str | None = None) -> None:
        """Send ``event`` and return once the broker acknowledged it; ``PublishFailed`` otherwise."""
        with traced_row(event, self._topics, request_id) as row:
            await self._send(event, row)

    async def _send(self, event: ProducerEvent, row: OutboxRow) -> None:
        headers = [(name, value.encode()) for name, value in row.headers]
        event_id = str(event.event_id)
        try:
            async with asyncio.timeout(self.timeout):
                delivery = await self._producer.send(row.topic, row.value, key=row.key, headers=headers)
                await delivery
        except TimeoutError:
            raise PublishTimeout(row.topic, event_id, f"no acknowledgement within {self.timeout:g} s") from None
        except KafkaError as exc:
            raise PublishFailed(row.topic, event_id, f"{type(exc).__name__}: {exc}") from exc


@asynccontextmanager
async def direct_event_bus(settings: Settings, timeout: float = 10.0) -> AsyncIterator[DirectEventBus]:
    """A started ``DirectEventBus`` for ``settings`` (its producer is stopped on exit)."""
    producer = aiokafka_producer(settings, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await producer.start()
    except (TimeoutError, KafkaError) as exc:
        await producer.stop()
        raise PublishFailed(",".join(settings.topics.sources), "-", f"cannot reach Kafka: {exc!r}") from exc
    try:
        yield DirectEventBus(producer, settings.topics, timeout)
    finally:
        await producer.stop()
