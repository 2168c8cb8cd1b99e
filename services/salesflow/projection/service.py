"""The projection's consume loop: poll a batch, write it in one transaction, then commit the offsets.

It never commits past a failed write: while Postgres is away the same batch is retried with capped
backoff, and the offsets are committed only once it is written, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.domain.records import RecordIn
from salesflow.kafka_clients import aiokafka_group_options, client_options
from salesflow.lag import LagTracker
from salesflow.metrics import PipelineMetrics
from salesflow.projection.rows import Batch
from salesflow.projection.writer import write_batch
from salesflow.settings import Settings

log = logging.getLogger(__name__)

LAG_REPORT_SECONDS = 5.0
# SQLAlchemy wraps the driver's errors; the writer's COPY path uses the driver directly, so its own
# errors count as well: any database error retries the same batch, as before.
RETRYABLE_DB_ERRORS = (
    OperationalError,
    InterfaceError,
    DBAPIError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    ConnectionError,
)


class Projection:
    def __init__(self, *, settings: Settings, engine: AsyncEngine, metrics: PipelineMetrics) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.topics = settings.topics
        self._stopping = asyncio.Event()

    def consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self.topics.sources,
            self.topics.outcomes,
            self.topics.deadletter,
            **client_options(self.settings),
            **aiokafka_group_options(self.settings),
            group_id=self.settings.projection_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.projection_batch_size,
        )

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        consumer = self.consumer()
        await consumer.start()
        lag = LagTracker(self.metrics, self.settings.projection_group)
        reported = 0.0
        try:
            while not self._stopping.is_set():
                if time.monotonic() - reported > LAG_REPORT_SECONDS:
                    await self._report_lag(consumer, lag)
                    reported = time.monotonic()
                polled = await consumer.getmany(
                    timeout_ms=int(self.settings.projection_batch_seconds * 1000),
                    max_records=self.settings.projection_batch_size,
                )
                records = [record for batch in polled.values() for record in batch]
                if not records:
                    continue
                await self._write_until_done(self.batch_of(records))
                for record in records:
                    lag.processed(record.topic, record.partition, record.offset, record.timestamp / 1000)
                try:
                    await consumer.commit()
                except CommitFailedError as exc:
                    # The group rebalanced while we wrote: the records will be read again, and the
                    # writes are idempotent, so this costs time, not correctness.
                    log.warning("offset commit failed after a rebalance, records will be re-read: %s", exc)
        finally:
            await consumer.stop()

    async def _report_lag(self, consumer: AIOKafkaConsumer, lag: LagTracker) -> None:
        assigned = consumer.assignment()
        if not assigned:
            return
        ends = await consumer.end_offsets(list(assigned))
        positions = {(tp.topic, tp.partition): await consumer.position(tp) for tp in assigned}
        lag.report({(tp.topic, tp.partition): end for tp, end in ends.items()}, positions, time.time())

    def batch_of(self, records: list[ConsumerRecord]) -> Batch:
        batch = Batch()
        for record in records:
            rec = RecordIn.from_consumer_record(record)
            if rec.topic == self.topics.outcomes:
                batch.add_outcome(rec)
            elif rec.topic == self.topics.deadletter:
                batch.add_dead_letter(rec)
            else:
                batch.add_source(rec, self.settings.max_event_bytes)
        return batch

    async def _write_until_done(self, batch: Batch) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                written = await write_batch(self.engine, batch)
            except RETRYABLE_DB_ERRORS as exc:
                attempt += 1
                self.metrics.projection_write_errors.inc()
                delay = random.uniform(0, min(10.0, 0.2 * 2**attempt))
                log.warning("projection write failed (attempt %d), retrying in %.1fs: %s", attempt, delay, exc)
                await asyncio.sleep(delay)
                continue
            self.metrics.projection_batch_duration.observe(time.perf_counter() - started)
            for table, count in written.items():
                self.metrics.projection_rows.labels(table).inc(count)
            return
