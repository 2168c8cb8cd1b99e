"""The Faust edge of the processor: one agent per source topic, raw bytes in, records out.

Acknowledgement policy: the stream runs with acks off (``stream.noack()``). An event is acked only
after every record it produced (outcome, commands or dead letter) has been acknowledged by the broker
and the partition's replay watermark covering it has been written, in the order the events were
read. Faust commits only acked offsets, so a crash, a failed send or a shutdown never commits past an
event whose outcome is not on Kafka. A send that fails for good stops the worker (it restarts and
re-reads from the last commit) instead of acking a lost outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import faust
from faust.types import EventT, StreamT

from salesflow.domain.events import EventType
from salesflow.domain.records import RecordIn, RecordOut
from salesflow.kafka_admin import read_topic
from salesflow.kafka_clients import faust_broker_options, faust_group_options
from salesflow.lag import LagTracker
from salesflow.processor.pipeline import EventProcessor
from salesflow.processor.watermarks import ReplayWatermarks
from salesflow.settings import Settings

log = logging.getLogger(__name__)

# Events whose records are still in flight, per agent: bounds memory under a burst (backpressure).
MAX_IN_FLIGHT = 2000
DRAIN_SECONDS = 10.0

InFlight = asyncio.Queue[tuple[EventT, list[Awaitable[Any]]]]


LAG_REPORT_SECONDS = 5.0
PRODUCER_LINGER_SECONDS = 0.005


def create_app(settings: Settings, processor: EventProcessor) -> faust.App:
    """Build the Faust app with one agent per source topic."""
    app = faust.App(
        settings.processor_group,
        **faust_broker_options(settings),
        **faust_group_options(settings),
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        # Faust's default linger is 0: a produce request per few records, which the profile put at
        # ~15% of the worker's time. 5 ms (as our own producer client) batches them for little latency.
        producer_linger=PRODUCER_LINGER_SECONDS,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=False,  # topics are created by `salesflow topics create`
        topic_disable_leader=True,
        web_enabled=False,
        store="memory://",
        datadir=settings.worker_data_dir,
        broker_commit_interval=1.0,
    )

    # Faust resumes fetching before the assignment signal's handlers finish: records wait for the marks.
    # Closed and opened in the one handler, so the gate is never left shut without a reload under way.
    marks_loaded = asyncio.Event()

    @app.on_partitions_assigned.connect
    async def reload_watermarks(sender: Any, assigned: Any, **kwargs: Any) -> None:
        marks_loaded.clear()
        # Another worker may have moved these partitions' marks since we last looked.
        processor.watermarks.load(await read_topic(settings, processor.watermarks.topic))
        lag.forget()
        marks_loaded.set()

    lag = LagTracker(processor.metrics, settings.processor_group)

    @app.timer(LAG_REPORT_SECONDS)
    async def report_lag() -> None:
        assigned = app.consumer.assignment()
        if not assigned:
            return
        ends = await app.consumer.highwaters(*assigned)
        positions = {(tp.topic, tp.partition): await app.consumer.position(tp) or 0 for tp in assigned}
        lag.report({(tp.topic, tp.partition): end for tp, end in ends.items()}, positions, time.time())

    for event_type in EventType:
        topic = app.topic(settings.topics.source(event_type), key_type=bytes, value_type=bytes)
        app.agent(topic, name=f"process_{event_type.value.replace('.', '_')}")(
            _agent(app, processor, lag, marks_loaded)
        )
    return app


def _agent(app: faust.App, processor: EventProcessor, lag: LagTracker, marks_loaded: asyncio.Event) -> Any:
    async def agent(stream: StreamT[bytes]) -> None:
        manual = stream.noack()
        in_flight: InFlight = asyncio.Queue(MAX_IN_FLIGHT)
        acker = asyncio.create_task(_ack_in_order(app, manual, in_flight, processor.watermarks, lag))
        try:
            async for event in manual.events():
                await marks_loaded.wait()  # is it a replay? Only the partition's mark can tell
                outgoing = await processor.process(_record_in(event))
                await in_flight.put((event, [await _send(app, out) for out in outgoing]))
        finally:
            # On shutdown, let what is in flight be delivered and acked, so the final commit covers it.
            try:
                await asyncio.wait_for(asyncio.shield(in_flight.join()), DRAIN_SECONDS)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("stopping with %d events not acked; they will be read again", in_flight.qsize())
            acker.cancel()

    return agent


async def _ack_in_order(
    app: faust.App, stream: StreamT[bytes], in_flight: InFlight, watermarks: ReplayWatermarks, lag: LagTracker
) -> None:
    while True:
        batch = [await in_flight.get()]
        while not in_flight.empty():
            batch.append(in_flight.get_nowait())
        try:
            await asyncio.gather(*(d for _, deliveries in batch for d in deliveries))
            for event, _ in batch:
                watermarks.advance(event.message.topic, event.message.partition, event.message.offset)
            await asyncio.gather(*[await _send(app, mark) for mark in watermarks.pending_records()])
        except Exception as exc:
            first = batch[0][0].message
            log.critical(
                "could not deliver the records of %s[%s]@%s and after: %r; stopping without ack",
                first.topic,
                first.partition,
                first.offset,
                exc,
            )
            await app.crash(exc)
            return
        for event, _ in batch:
            await stream.ack(event)
            message = event.message
            lag.processed(message.topic, message.partition, message.offset, message.timestamp)
            in_flight.task_done()


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
