"""The API's way to Kafka: one producer, started on first use (reads need only Postgres, so the API
starts and serves them while Kafka is away), used to re-publish events for replay."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from salesflow.api.errors import Unavailable
from salesflow.producer.client import kafka_producer
from salesflow.replay.republish import Replayer
from salesflow.settings import Settings


class KafkaGateway:
    def __init__(self, settings: Settings, *, start_timeout: float = 10.0) -> None:
        self.settings = settings
        self.start_timeout = start_timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = kafka_producer(self.settings)
                try:
                    await asyncio.wait_for(producer.start(), self.start_timeout)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise Unavailable("kafka") from exc
                self._producer = producer
            return self._producer

    async def replayer(self) -> Replayer:
        return Replayer(self.settings, await self.producer())

    async def check(self, timeout: float) -> str:
        """``ok``, or why Kafka is not usable, within ``timeout`` seconds."""
        try:
            producer = await asyncio.wait_for(self.producer(), timeout)
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
        except (Unavailable, KafkaError, OSError, TimeoutError) as exc:
            return f"unavailable: {type(exc.__cause__ or exc).__name__}"
        return "ok"

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
