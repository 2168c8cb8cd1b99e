"""Which events to replay, and where their original records are: read from ``events`` in Postgres.

Every function takes optional tenants: the API passes the caller's, so a replay never reaches
another tenant's events; the CLI (an operator) passes none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.db.schema import events
from salesflow.domain.outcome import EventStatus

# The columns of EventPosition, in its order: id, tenant, type, status, topic, partition, offset.
PositionQuery = Select[UUID, str | None, str | None, str, str | None, int | None, int | None]


@dataclass(frozen=True)
class EventPosition:
    """An event and the source record it was read from (None where never seen on a source topic)."""

    event_id: UUID
    tenant_id: str | None
    type: str | None
    status: str
    topic: str | None
    partition: int | None
    offset: int | None

    @property
    def position(self) -> tuple[str, int, int] | None:
        if self.topic is None or self.partition is None or self.offset is None:
            return None
        return (self.topic, self.partition, self.offset)


def _positions() -> PositionQuery:
    c = events.c
    return select(c.id, c.tenant_id, c.type, c.status, c.source_topic, c.source_partition, c.source_offset)


async def positions_by_id(
    engine: AsyncEngine, ids: Sequence[UUID], tenants: Collection[str] | None = None
) -> list[EventPosition]:
    """The events with these ids (of ``tenants`` when given), in the order asked."""
    query = _positions().where(events.c.id.in_(list(ids)))
    if tenants is not None:
        query = query.where(events.c.tenant_id.in_(sorted(tenants)))
    found = {p.event_id: p for p in await _fetch(engine, query)}
    return [found[i] for i in ids if i in found]


async def positions_by_status(
    engine: AsyncEngine,
    *,
    status: EventStatus = EventStatus.FAILED,
    event_type: str | None = None,
    limit: int = 100,
    tenants: Collection[str] | None = None,
) -> list[EventPosition]:
    """The oldest ``limit`` events with this status (and type), oldest first: a replay keeps their order."""
    query = _positions().where(events.c.status == status.value)
    if event_type is not None:
        query = query.where(events.c.type == event_type)
    if tenants is not None:
        query = query.where(events.c.tenant_id.in_(sorted(tenants)))
    query = query.order_by(events.c.created_at.asc().nulls_last(), events.c.id).limit(limit)
    return await _fetch(engine, query)


async def _fetch(engine: AsyncEngine, query: PositionQuery) -> list[EventPosition]:
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [EventPosition(*row) for row in rows]
