"""What the API tests share: an outbox relay on the pipeline's database (the API's replays leave through
it), and a reader that finds a replay's copy on Kafka by the position it names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from salesflow.domain.records import REPLAY_HEADER
from salesflow.kafka_clients import client_options
from salesflow.outbox.outbox_settings import OutboxSettings
from salesflow.outbox.relay import Relay
from salesflow.outbox.relay_metrics import OutboxMetrics
from salesflow.settings import Settings


@asynccontextmanager
async def running_relay(settings: Settings) -> AsyncIterator[Relay]:
    """``salesflow outbox relay`` in this process, draining the outbox of ``settings.database_url``."""
    stopping = asyncio.Event()
    config = OutboxSettings(database_url=None, metrics_port=0, poll_interval_seconds=0.2, leader_check_seconds=0.2)
    relay = Relay(settings, config, OutboxMetrics(), stopping)
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


async def replay_copies(
    settings: Settings, original: tuple[str, int, int], *, expect: int = 1, timeout: float = 30
) -> list[Any]:
    """The records on the original's partition, after it, that name it in ``salesflow.replay``; waits
    until ``expect`` of them are there (or ``timeout`` s pass, then returns what it found)."""
    topic, partition, offset = original
    origin = f"{topic}:{partition}:{offset}".encode()
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    found: list[Any] = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset + 1)
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < expect and asyncio.get_running_loop().time() < deadline:
            batch = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
            found += [r for r in batch if dict(r.headers or ()).get(REPLAY_HEADER) == origin]
    finally:
        await consumer.stop()
    return found
