"""The Faust edge of the processor: one agent per source topic, raw bytes in, records out.

Acknowledgement policy: the stream runs with acks off (``stream.noack()``); an event is acked only
after every record it produced (outcome, commands or dead letter) has been acknowledged by the broker,
in the order the events were read. Faust commits only acked offsets, so a crash, a failed send or a
shutdown never commits past an event whose outcome is not on Kafka. A send that fails for good stops
the worker (it restarts and re-reads from the last commit) instead of acking a lost outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import faust
from faust.types import EventT, StreamT

from salesflow.domain.events import EventType
from salesflow.domain.records import RecordIn, RecordOut
from salesflow.kafka_clients import faust_broker_options
from salesflow.processor.pipeline import EventProcessor
from salesflow.settings import Settings

log = logging.getLogger(__name__)

# Events whose records are still in flight, per agent: bounds memory under a burst (backpressure).
MAX_IN_FLIGHT = 2000


def create_app(settings: Settings, processor: EventProcessor) -> faust.App:
    """Build the Faust app with one agent per source topic."""
    app = faust.App(
        settings.processor_group,
        **faust_broker_options(settings),
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=False,  # topics are created by `salesflow topics create`
        topic_disable_leader=True,
        web_enabled=False,
        store="memory://",
        datadir=settings.worker_data_dir,
        broker_commit_interval=1.0,
    )
    for event_type in EventType:
        topic = app.topic(settings.topics.source(event_type), key_type=bytes, value_type=bytes)
        app.agent(topic, name=f"process_{event_type.value.replace('.', '_')}")(_agent(app, processor))
    return app


def _agent(app: faust.App, processor: EventProcessor) -> Any:
    async def agent(stream: StreamT[bytes]) -> None:
        manual = stream.noack()
        in_flight: asyncio.Queue[tuple[EventT, list[Awaitable[Any]]]] = asyncio.Queue(MAX_IN_FLIGHT)
        acker = asyncio.create_task(_ack_in_order(app, manual, in_flight))
        try:
            async for event in manual.events():
                outgoing = await processor.process(_record_in(event))
                await in_flight.put((event, [await _send(app, out) for out in outgoing]))
        finally:
            acker.cancel()

    return agent


async def _ack_in_order(app: faust.App, stream: StreamT[bytes], in_flight: asyncio.Queue[Any]) -> None:
    while True:
        event, deliveries = await in_flight.get()
        try:
            await asyncio.gather(*deliveries)
        except Exception as exc:  # noqa: BLE001 - a lost outcome must stop the worker, never be acked
            log.critical("could not deliver the records of %s[%s]@%s: %r; stopping without ack",
                         event.message.topic, event.message.partition, event.message.offset, exc)
            await app.crash(exc)
            return
        await stream.ack(event)


async def _send(app: faust.App, record: RecordOut) -> Awaitable[Any]:
    return await app.producer.send(
        record.topic, record.key, record.value, partition=None, timestamp=None, headers=list(record.headers)
    )


def _record_in(event: EventT) -> RecordIn:
    message = event.message
    headers = message.headers.items() if isinstance(message.headers, dict) else (message.headers or ())
    return RecordIn(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        key=message.key,
        value=message.value,
        headers=tuple((k, v) for k, v in headers),
    )
