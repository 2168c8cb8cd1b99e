"""The projection's consume loop: poll a batch, write it, then commit the offsets; the next poll is
read and parsed while a batch is written (``WriteAhead``).

The failure policy (``failure_policy``): while Postgres is away the same batch is retried with the
settings' backoff until it comes back or a stop is requested; a batch that fails on data is split
until the offending records are found, the rest is written and each bad record is kept in
``rejected_records``. Offsets are committed only once every record of the batch is written or
rejected, so nothing is skipped and one bad record never stops the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.domain.records import RecordIn
from salesflow.failure_policy import classify_db_error, db_retry_policy, sleep_unless_stopped
from salesflow.lag import LagTracker, report_async
from salesflow.metrics import PipelineMetrics
from salesflow.projection.poll_groups import Batch
from salesflow.projection.rows import (
    Item,
    Rejection,
    RejectReason,
    dead_letter_row,
    outcome_rows,
    pending_row,
)
from salesflow.projection.writer import Written, write_batch
from salesflow.settings import Settings
from salesflow.tracing import state as tracing

log = logging.getLogger(__name__)

# After a stop request, a write under way gets this long to finish before it is abandoned (rolled
# back, its records read again on restart): a healthy write ends well within it, a hung one does not.
STOP_GRACE_SECONDS = 3.0
MAX_BACKOFF_EXPONENT = 30


class Stopped(Exception):
    """A stop was requested before the batch was written: its offsets must not be committed."""


class WriteAhead:
    """One batch written while the next poll is read: the projection's Python and Postgres, each on a
    core, instead of taking turns. Batches are still written one at a time and in poll order, so the
    status order and each batch's all-or-nothing hold as before; a batch's offsets are committed only
    once it is written (``submit`` and ``drain`` hand back the records whose write has ended)."""

    def __init__(self, write: Callable[[list[Item]], Coroutine[Any, Any, None]]) -> None:
        self._write = write
        self._writing: tuple[list[Any], asyncio.Future[None]] | None = None

    async def submit(self, records: list[Any], items: list[Item]) -> list[Any]:
        """Wait for the batch under way, then start writing ``items``; returns the records written.
        Raises what the write raised (``Stopped`` included): those records are not written."""
        written = await self.drain()
        self._writing = (records, asyncio.ensure_future(self._write(items)))
        return written

    async def drain(self) -> list[Any]:
        """Wait for the batch under way (if any); returns its records."""
        if self._writing is None:
            return []
        records, task = self._writing
        self._writing = None
        await task
        return records

    async def cancel(self) -> None:
        """Abandon a write under way (its transaction rolls back; its records are read again)."""
        if self._writing is not None:
            task = self._writing[1]
            self._writing = None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class Projection:
    def __init__(
        self, *, settings: Settings, engine: AsyncEngine, metrics: PipelineMetrics, consumer: AIOKafkaConsumer
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.consumer = consumer  # built by the composition root (bootstrap.projection_consumer)
        self.metrics = metrics
        self.topics = settings.topics
        self.retry = db_retry_policy(settings)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        consumer = self.consumer
        await consumer.start()
        lag = LagTracker(self.metrics, self.settings.projection_group)
        ahead = WriteAhead(self.write_all)
        try:
            while not self._stopping.is_set():
                if lag.due():
                    await report_async(lag, consumer.assignment(), consumer.end_offsets, consumer.position)
                polled = await consumer.getmany(
                    timeout_ms=int(self.settings.projection_batch_seconds * 1000),
                    max_records=self.settings.projection_batch_size,
                )
                records = [record for batch in polled.values() for record in batch]
                # Read while the batch before is written: Postgres works on it meanwhile.
                items = self.items_of(records) if records else None
                written = await ahead.submit(records, items) if items is not None else await ahead.drain()
                await self._settle(consumer, lag, written)
            await self._settle(consumer, lag, await ahead.drain())
        except Stopped:
            log.info("stop requested before the batch was written; its offsets stay uncommitted")
        finally:
            await ahead.cancel()
            await consumer.stop()

    async def _settle(self, consumer: AIOKafkaConsumer, lag: LagTracker, records: list[ConsumerRecord]) -> None:
        """Commit the offsets of records now written (a poll's worth, or none)."""
        if not records:
            return
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            lag.processed(record.topic, record.partition, record.offset, record.timestamp / 1000)
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        assigned = consumer.assignment()
        # Only its own records' offsets: the next poll, read meanwhile, is not written yet.
        mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced while we wrote: the records will be read again, and the
            # writes are idempotent, so this costs time, not correctness.
            log.warning("offset commit failed after a rebalance, records will be re-read: %s", exc)

    def items_of(self, records: list[ConsumerRecord]) -> list[Item]:
        """Each record as what it writes; a source record that is no event writes nothing."""
        items: list[Item] = []
        for record in records:
            rec = RecordIn.from_consumer_record(record)
            if rec.topic == self.topics.outcomes:
                items.append(outcome_rows(rec))
            elif rec.topic == self.topics.deadletter:
                items.append(dead_letter_row(rec))
            elif (pending := pending_row(rec, self.settings.max_event_bytes)) is not None:
                items.append(pending)
        return items

    async def write_all(self, items: list[Item]) -> None:
        """Write every item or keep it as rejected. A part that fails on data is split in two until
        the one record it fails on is found; raises ``Stopped`` if a stop comes first."""
        parts = [items]
        while parts:
            part = parts.pop(0)
            started = time.time_ns()
            try:
                written = await self._write_retrying(Batch.of(part))
            except Exception as exc:
                if classify_db_error(exc) != "data" or (len(part) == 1 and isinstance(part[0], Rejection)):
                    raise
                if len(part) > 1:
                    middle = len(part) // 2
                    parts[0:0] = [part[:middle], part[middle:]]
                else:
                    parts.insert(0, [_rejection(part[0], exc)])
                continue
            self._count(written)
            if tracing.TRACER is not None:  # once per write: spans linked to the events written
                from salesflow.tracing.projection_spans import trace_written

                trace_written(tracing.TRACER, part, written.rows, started)

    async def _write_retrying(self, batch: Batch) -> Written:
        """The batch written; an unavailable database is retried (the settings' backoff) until a stop."""
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                written = await self._unless_stopped(write_batch(self.engine, batch))
            except Stopped:
                raise
            except Exception as exc:
                if classify_db_error(exc) != "transient":
                    raise
                attempt += 1
                self.metrics.projection_write_errors.inc()
                delay = self.retry.delay(min(attempt, MAX_BACKOFF_EXPONENT))
                log.warning("projection write failed (attempt %d), retrying in %.1fs: %s", attempt, delay, exc)
                if await sleep_unless_stopped(delay, self._stopping):
                    raise Stopped from exc
                continue
            self.metrics.projection_batch_duration.observe(time.perf_counter() - started)
            return written

    async def _unless_stopped(self, write: Coroutine[Any, Any, Written]) -> Written:
        """The write's result; after a stop request it gets ``STOP_GRACE_SECONDS``, then is abandoned."""
        task = asyncio.ensure_future(write)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise Stopped
            return task.result()
        finally:
            stopping.cancel()

    def _count(self, written: Written) -> None:
        for table, count in written.rows.items():
            self.metrics.projection_rows.labels(table).inc(count)
        for rejection in written.rejected:
            self.metrics.projection_rejected_records.labels(rejection.reason.value).inc()
            log.warning(
                "projection rejected %s[%d]@%d (%s): %s",
                rejection.record.topic,
                rejection.record.partition,
                rejection.record.offset,
                rejection.reason.value,
                rejection.error[:300],
            )


def _rejection(item: Item, exc: BaseException) -> Rejection:
    """The one record a data error was narrowed down to, kept as ``invalid_value``."""
    assert not isinstance(item, Rejection)
    error = f"{type(exc).__name__}: {exc}"
    return Rejection(item.record, RejectReason.INVALID_VALUE, error, item.event_id, item.tenant_id)
