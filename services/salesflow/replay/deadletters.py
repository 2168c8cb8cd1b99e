"""Dead letters: list and inspect them in Postgres, and redrive chosen ones to their original topic.

A dead letter is named by where its record was first read, ``topic:partition:offset`` (the primary key
of ``dead_letters``). A redrive publishes the stored key and bytes again to the original topic and
partition with the original headers (the ``salesflow.dlq.*`` ones dropped, ``salesflow.redrive.from``
added), then marks the row ``redriven_at``: after a fix, the processor decodes it afresh. A record that
still does not decode is dead-lettered again, at its new position.

Headers are restored from the stored copy, which keeps header values as UTF-8 text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Select, and_, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.db.schema import dead_letters
from salesflow.errors import ReplayError

DLQ_HEADER_PREFIX = "salesflow.dlq."
REDRIVE_HEADER = "salesflow.redrive.from"

Row = dict[str, Any]


@dataclass(frozen=True, order=True)
class DeadLetterId:
    topic: str
    partition: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> DeadLetterId:
        parts = text.strip().rsplit(":", 2)
        if len(parts) == 3 and parts[0]:
            try:
                return cls(parts[0], int(parts[1]), int(parts[2]))
            except ValueError:
                pass
        raise ReplayError(f"{text!r} is not a dead letter id: expected topic:partition:offset")

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


def row_id(row: Row) -> DeadLetterId:
    return DeadLetterId(row["topic"], row["partition"], row["offset"])


async def list_dead_letters(
    engine: AsyncEngine,
    *,
    reason: str | None = None,
    topic: str | None = None,
    include_redriven: bool = False,
    limit: int = 50,
    oldest_first: bool = False,
) -> list[Row]:
    """Dead letters, newest first (or oldest first); those already redriven only with ``include_redriven``."""
    query = _select(reason=reason, topic=topic, include_redriven=include_redriven)
    when = dead_letters.c.dead_lettered_at
    return await _rows(engine, query.order_by(when.asc() if oldest_first else when.desc()).limit(limit))


async def get_dead_letters(engine: AsyncEngine, ids: Sequence[DeadLetterId]) -> list[Row]:
    if not ids:
        return []
    keys = tuple_(dead_letters.c.topic, dead_letters.c.partition, dead_letters.c.offset)
    found = await _rows(engine, select(dead_letters).where(keys.in_([(i.topic, i.partition, i.offset) for i in ids])))
    by_id = {row_id(r): r for r in found}
    return [by_id[i] for i in ids if i in by_id]


async def redrive(
    engine: AsyncEngine, producer: AIOKafkaProducer, rows: Sequence[Row]
) -> list[tuple[DeadLetterId, tuple[str, int, int]]]:
    """Publish each row's record to its original topic and partition; mark them redriven once acked."""
    futures = []
    for row in sorted(rows, key=row_id):  # original order within each partition
        ident = row_id(row)
        headers = [(name, value.encode()) for name, value in redrive_headers(row)]
        futures.append(
            (
                ident,
                await producer.send(
                    ident.topic, row["raw"], key=row["record_key"], partition=ident.partition, headers=headers
                ),
            )
        )
    sent = [(ident, await future) for ident, future in futures]
    await mark_redriven(engine, [ident for ident, _ in sent])
    return [(ident, (m.topic, m.partition, m.offset)) for ident, m in sent]


def redrive_headers(row: Row) -> list[tuple[str, str]]:
    """A redriven record's headers: the original's (``salesflow.dlq.*`` dropped), plus where it was
    dead-lettered (``salesflow.redrive.from``). Text: the stored copy keeps header values as text."""
    stored = (row["headers"] or {}).items()
    headers = [(k, str(v)) for k, v in stored if not k.startswith(DLQ_HEADER_PREFIX)]
    headers.append((REDRIVE_HEADER, str(row_id(row))))
    return headers


async def mark_redriven(engine: AsyncEngine, ids: Sequence[DeadLetterId]) -> None:
    if not ids:
        return
    c = dead_letters.c
    match = or_(*(and_(c.topic == i.topic, c.partition == i.partition, c.offset == i.offset) for i in ids))
    async with engine.begin() as conn:
        await conn.execute(update(dead_letters).where(match).values(redriven_at=func.now()))


def _select(*, reason: str | None, topic: str | None, include_redriven: bool) -> Select[Any]:
    query = select(dead_letters)
    if reason is not None:
        query = query.where(dead_letters.c.reason == reason)
    if topic is not None:
        query = query.where(dead_letters.c.topic == topic)
    if not include_redriven:
        query = query.where(dead_letters.c.redriven_at.is_(None))
    return query


async def _rows(engine: AsyncEngine, query: Any) -> list[Row]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
