"""Consumer lag of a group, as ``kafka-consumer-groups --describe`` shows it, plus lag in seconds.

Lag in records is the log end minus the committed offset. Lag in seconds is the age of the oldest
record the group has not processed yet (the one at its committed offset), from the record's timestamp:
what an operator compares with the freshness SLO. Partitions are those the group has committed
offsets for, and those assigned to its live members.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka.structs import TopicPartition

from salesflow.replay.kafka_tools import GroupDescription, kafka_tools
from salesflow.replay.reader import record_reader
from salesflow.settings import Settings


@dataclass(frozen=True)
class LagRow:
    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int
    lag: int | None
    consumer_id: str | None
    host: str | None
    client_id: str | None
    lag_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GroupLag:
    group: str
    state: str
    members: int
    rows: list[LagRow]

    @property
    def total_lag(self) -> int:
        return sum(r.lag or 0 for r in self.rows)

    @property
    def max_lag_seconds(self) -> float | None:
        found = [r.lag_seconds for r in self.rows if r.lag_seconds is not None]
        return max(found) if found else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "state": self.state,
            "members": self.members,
            "total_lag": self.total_lag,
            "max_lag_seconds": self.max_lag_seconds,
            "partitions": [r.as_dict() for r in self.rows],
        }


async def group_lag(settings: Settings, group: str, *, now_ms: int | None = None) -> GroupLag:
    """Lag of every partition of ``group``, in records and in seconds."""
    async with kafka_tools(settings) as tools:
        described = await tools.describe_group(group)
        committed = await tools.committed(group)
        partitions = sorted(set(committed) | {tp for m in described.members for tp in m.partitions})
        starts = await tools.log_starts(partitions)
        ends = await tools.log_ends(partitions)
    oldest = {
        tp: max(committed[tp], starts[tp])
        for tp in partitions
        if tp in committed and ends[tp] > max(committed[tp], starts[tp])
    }
    ages = await _ages(settings, oldest, now_ms if now_ms is not None else int(time.time() * 1000))
    rows = [_row(tp, committed.get(tp), ends[tp], described, ages.get(tp)) for tp in partitions]
    return GroupLag(group, described.state, len(described.members), rows)


def _row(tp: TopicPartition, current: int | None, end: int, described: GroupDescription, age: float | None) -> LagRow:
    owner = described.owner(tp)
    return LagRow(
        topic=tp.topic,
        partition=tp.partition,
        current_offset=current,
        log_end_offset=end,
        lag=None if current is None else max(end - current, 0),
        consumer_id=owner.member_id if owner else None,
        host=owner.host if owner else None,
        client_id=owner.client_id if owner else None,
        lag_seconds=age if age is not None else (0.0 if current is not None and current >= end else None),
    )


async def _ages(settings: Settings, oldest: dict[TopicPartition, int], now_ms: int) -> dict[TopicPartition, float]:
    if not oldest:
        return {}
    async with record_reader(settings) as reader:
        records = await reader.read((tp.topic, tp.partition, offset) for tp, offset in oldest.items())
    ages: dict[TopicPartition, float] = {}
    for (topic, partition, _), record in records.items():
        if record is not None and record.timestamp_ms is not None:
            ages[TopicPartition(topic, partition)] = max(now_ms - record.timestamp_ms, 0) / 1000
    return ages
