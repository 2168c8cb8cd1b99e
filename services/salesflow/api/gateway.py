"""The API's way to Kafka: one producer, started on first use (reads need only Postgres, so the API
starts and serves them while Kafka is away), used to re-publish events for replay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from salesflow.api.http_errors import Unavailable
from salesflow.replay.republish import Replayer
from salesflow.settings import Settings

# Builds, starts and (when the block ends) stops a producer: ``kafka_clients.started_producer``.
ProducerFactory = Callable[[Settings], AbstractAsyncContextManager[AIOKafkaProducer]]


class KafkaGateway:
    def __init__(self, settings: Settings, connect: ProducerFactory, *, start_timeout: float = 10.0) -> None:
        self.settings = settings
        self.start_timeout = start_timeout
        self._connect = connect
        self._producer: AIOKafkaProducer | None = None
        self._open = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                try:
                    # A producer that fails (or times out) while starting is stopped by the factory.
                    self._producer = await asyncio.wait_for(
                        self._open.enter_async_context(self._connect(self.settings)), self.start_timeout
                    )
                except (KafkaError, OSError, TimeoutError) as exc:
                    raise Unavailable("kafka") from exc
            return self._producer

    async def replayer(self) -> Replayer:
        return Replayer(self.settings, await self.producer())

    async def check(self, timeout: float) -> str:
        """``ok``, or why Kafka is not usable, within ``timeout`` seconds."""
        try:
            producer = await asyncio.wait_for(self.producer(), timeout)
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
        except (Unavailable, KafkaError, OSError, TimeoutError) as exc:
            # Unavailable names the error underneath; a timeout's own cause is only its cancellation.
            reason = exc.__cause__ if isinstance(exc, Unavailable) and exc.__cause__ else exc
            return f"unavailable: {type(reason).__name__}"
        return "ok"

    async def close(self) -> None:
        async with self._lock:
            self._producer = None
            await self._open.aclose()
