"""Read records back from Kafka at known positions: a group-less consumer, assigned and seeked.

Used to re-publish an event's original record (found by the source position kept in ``events``) and
to date the oldest unprocessed record of a lagging partition.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from salesflow.domain.records import RecordIn
from salesflow.kafka_admin import existing_partitions
from salesflow.kafka_clients import client_options
from salesflow.settings import Settings

Position = tuple[str, int, int]  # topic, partition, offset


class RecordReader:
    """Fetches the records at given offsets; an offset outside the log (deleted) reads as ``None``."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Callable[[], Awaitable[dict[str, set[int]]]],
        timeout: float = 10.0,
    ) -> None:
        self.consumer = consumer
        self.partitions = partitions  # every topic the cluster has now, with its partitions
        self.timeout = timeout

    async def read(self, positions: Iterable[Position]) -> dict[Position, RecordIn | None]:
        by_tp: dict[TopicPartition, list[int]] = {}
        for topic, partition, offset in positions:
            by_tp.setdefault(TopicPartition(topic, partition), []).append(offset)
        if not by_tp:
            return {}
        found: dict[Position, RecordIn | None] = {}
        # A topic deleted since (or a partition it never had) reads as gone at once: asking for its
        # offsets would wait out the client's metadata retries (about 40 s) on every request.
        existing = await self._existing(list(by_tp))
        for tp in [tp for tp in by_tp if tp not in existing]:
            for offset in by_tp.pop(tp):
                found[(tp.topic, tp.partition, offset)] = None
        if not by_tp:
            return found
        starts = await self.consumer.beginning_offsets(list(by_tp))
        ends = await self.consumer.end_offsets(list(by_tp))
        self.consumer.assign(list(by_tp))
        for tp, offsets in by_tp.items():
            readable = [o for o in sorted(set(offsets)) if starts[tp] <= o < ends[tp]]
            records = await self._read_partition(tp, readable)
            for offset in offsets:
                found[(tp.topic, tp.partition, offset)] = records.get(offset)
        return found

    async def _existing(self, wanted: list[TopicPartition]) -> set[TopicPartition]:
        """The partitions of ``wanted`` that the cluster has now."""
        partitions = await self.partitions()
        return {tp for tp in wanted if tp.partition in partitions.get(tp.topic, ())}

    async def _read_partition(self, tp: TopicPartition, offsets: list[int]) -> dict[int, RecordIn]:
        fetched: dict[int, RecordIn] = {}
        highest = -1  # the highest offset read so far, contiguous from the last seek
        for wanted in offsets:
            if wanted <= highest:
                continue  # already read past it: present in ``fetched``, or not in the log (compacted)
            self.consumer.seek(tp, wanted)
            highest = await self._fetch_until(tp, wanted, fetched)
        return fetched

    async def _fetch_until(self, tp: TopicPartition, wanted: int, fetched: dict[int, RecordIn]) -> int:
        """Fetch from the current position until ``wanted`` is read or the position has passed it
        (a compacted record or a transaction marker has no record to return)."""
        deadline = time.monotonic() + self.timeout
        while wanted not in fetched:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no record of {tp.topic}[{tp.partition}] at {wanted} within {self.timeout}s")
            batch = await self.consumer.getmany(tp, timeout_ms=int(min(remaining, 1.0) * 1000), max_records=500)
            for record in batch.get(tp, []):
                fetched[record.offset] = RecordIn.from_consumer_record(record)
            if await self.consumer.position(tp) > wanted:
                break
        position: int = await self.consumer.position(tp)
        return position - 1


@asynccontextmanager
async def record_reader(settings: Settings, timeout: float = 10.0) -> AsyncIterator[RecordReader]:
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=None, enable_auto_commit=False, auto_offset_reset="none"
    )
    await consumer.start()
    try:
        yield RecordReader(consumer, functools.partial(existing_partitions, settings), timeout)
    finally:
        await _stop(consumer)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer. aiokafka's ``stop`` soon after ``start`` can raise the ``CancelledError`` of
    a task of its own that it has just cancelled (its coordinator's committed-offsets reset): that
    one is not ours, and answered a replay request with a 500. A cancellation of this task is."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
