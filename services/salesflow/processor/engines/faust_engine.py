"""The Faust engine (``SALESFLOW_WORKER_ENGINE=faust``): one agent per source topic, raw bytes in,
batches (``noack_take``) through the batch core, records out through Faust's producer.

Acknowledgement policy: the stream's events are taken without acks. An event is acked only when the
commit rule (``processor.commits``) frees its offset: every record it produced acknowledged by the
broker and its partition's replay watermark written, in read order. Faust commits only acked
offsets, so a crash, a failed send or a shutdown never commits past an event whose outcome is not on
Kafka. A send that fails for good stops the worker (it restarts and re-reads from the last commit).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import faust
from faust.types import EventT, StreamT

from salesflow.domain.events import EventType
from salesflow.domain.records import Headers, RecordIn, RecordOut
from salesflow.failure_policy import DRAIN_SECONDS
from salesflow.kafka_clients import faust_broker_options, faust_group_options
from salesflow.lag import REPORT_SECONDS, report_async
from salesflow.processor.commits import CommitLedger, Partition, Ticket
from salesflow.processor.core import EventProcessor
from salesflow.processor.settling import Settling
from salesflow.settings import Settings

log = logging.getLogger(__name__)

# Batches whose records are still in flight, per agent: bounds memory under a burst (backpressure).
MAX_IN_FLIGHT_BATCHES = 8
PRODUCER_LINGER_SECONDS = 0.005

Event = EventT[bytes]
InFlight = asyncio.Queue[list[tuple[Ticket, list[Awaitable[Any]]]]]


def create_app(settings: Settings, processor: EventProcessor) -> faust.App:
    """Build the Faust app with one agent per source topic."""
    app = _faust_app(settings)
    # Faust resumes fetching before the assignment signal's handlers finish: records wait for the marks.
    # Closed and opened in the one handler, so the gate is never left shut without a reload under way.
    marks_loaded = asyncio.Event()
    settling = Settling(settings, processor)

    async def reload_watermarks(sender: Any, assigned: Any, **kwargs: Any) -> None:
        marks_loaded.clear()
        await settling.assigned()
        marks_loaded.set()

    app.on_partitions_assigned.connect(reload_watermarks)  # type: ignore[arg-type]  # mode's signal stubs want a sync receiver

    async def report_lag() -> None:
        consumer = app.consumer
        await report_async(
            settling.lag, consumer.assignment(), lambda tps: consumer.highwaters(*tps), consumer.position
        )

    app.timer(REPORT_SECONDS)(report_lag)
    for event_type in EventType:
        topic = app.topic(settings.topics.source(event_type), key_type=bytes, value_type=bytes)
        agent = _Agent(app, settings, processor, settling, marks_loaded)
        app.agent(topic, name=f"process_{event_type.value.replace('.', '_')}")(agent.run)
    return app


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
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


class _Agent:
    """One source topic's agent: batches in, records out, events acked by the commit rule."""

    def __init__(
        self, app: faust.App, settings: Settings, processor: EventProcessor, settling: Settling, gate: asyncio.Event
    ) -> None:
        self.app, self.settings, self.processor, self.settling, self.gate = app, settings, processor, settling, gate

    async def run(self, stream: StreamT[bytes]) -> None:
        ledger = CommitLedger()
        events: dict[Partition, deque[Event]] = {}
        in_flight: InFlight = asyncio.Queue(MAX_IN_FLIGHT_BATCHES)
        acker = asyncio.create_task(self._ack_in_order(stream, ledger, events, in_flight))
        size, within = self.settings.processor_batch_size, self.settings.processor_batch_seconds
        try:
            async for batch in stream.noack_take(size, within=within):  # type: ignore[attr-defined]  # faust-streaming API, not in StreamT
                await self.gate.wait()  # is it a replay? Only the partition's mark can tell
                await in_flight.put(await self._publish(batch, ledger, events))
        finally:
            # On shutdown, let what is in flight be delivered and acked, so the final commit covers it.
            try:
                await asyncio.wait_for(asyncio.shield(in_flight.join()), DRAIN_SECONDS)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("stopping with %d batches not acked; they will be read again", in_flight.qsize())
            acker.cancel()

    async def _publish(
        self, batch: Sequence[Event], ledger: CommitLedger, events: dict[Partition, deque[Event]]
    ) -> list[tuple[Ticket, list[Awaitable[Any]]]]:
        records = [_record_in(event) for event in batch]
        outgoing = await self.processor.process_batch(records)
        self.settling.processed(records)
        sent = []
        for event, record, outs in zip(batch, records, outgoing, strict=True):
            events.setdefault((record.topic, record.partition), deque()).append(event)
            ticket = ledger.read(record.topic, record.partition, record.offset, len(outs))
            sent.append((ticket, [await _send(self.app, out) for out in outs]))
        return sent

    async def _ack_in_order(
        self, stream: StreamT[bytes], ledger: CommitLedger, events: dict[Partition, deque[Event]], in_flight: InFlight
    ) -> None:
        while True:
            batches = [await in_flight.get()]
            while not in_flight.empty():
                batches.append(in_flight.get_nowait())
            try:
                for batch in batches:
                    for ticket, deliveries in batch:
                        for delivery in deliveries:
                            await delivery
                            ledger.delivered(ticket)
                await self._write_marks(ledger)
            except Exception as exc:
                ledger.failed(exc)
                log.critical("could not deliver the records of a batch: %r; stopping without ack", exc)
                await self.app.crash(exc)
                return
            for partition, next_offset in ledger.take_committable().items():
                await self._ack_until(stream, events.get(partition, deque()), next_offset)
            for _ in batches:
                in_flight.task_done()

    async def _write_marks(self, ledger: CommitLedger) -> None:
        records = self.settling.marks_to_publish(ledger)
        await asyncio.gather(*[await _send(self.app, mark) for mark in records])
        for mark in records:
            self.settling.mark_acknowledged(ledger, mark.key, mark.value)

    async def _ack_until(self, stream: StreamT[bytes], events: deque[Event], next_offset: int) -> None:
        while events and events[0].message.offset < next_offset:
            event = events.popleft()
            await stream.ack(event)


async def _send(app: faust.App, record: RecordOut) -> Awaitable[Any]:
    return await app.producer.send(
        record.topic, record.key, record.value, partition=None, timestamp=None, headers=list(record.headers)
    )


def _record_in(event: Event) -> RecordIn:
    message = event.message
    raw = message.headers
    headers = cast(Headers, tuple(raw.items()) if isinstance(raw, dict) else tuple(raw or ()))
    return RecordIn(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        key=message.key,
        value=message.value,
        headers=headers,
    )
