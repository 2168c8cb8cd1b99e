"""The API's reads: events by id, filtered pages of events, and the analytics views.

Every query takes a ``TenantScope``: a tenant's caller sees only its own rows, whatever it asks for.
Pages are keyset-paginated, newest first, on (occurred time, id); the cursor is that pair, opaque.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import ColumnElement, TableClause, column, false, func, select, table, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.api.http_errors import ApiError
from salesflow.api.principal import TenantScope
from salesflow.db.schema import events
from salesflow.domain.events import EventType
from salesflow.domain.outcome import EventStatus

Row = dict[str, Any]

# Events that never had an occurred time (dead-lettered, seen only by id) sort by when they arrived.
SORT_TIME = func.coalesce(events.c.created_at, events.c.received_at)


@dataclass(frozen=True)
class EventFilter:
    scope: TenantScope
    status: EventStatus | None = None
    event_type: EventType | None = None
    since: datetime | None = None  # occurred at or after
    until: datetime | None = None  # occurred before


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: its last row's sort time and id."""

    time: datetime
    id: UUID

    def encode(self) -> str:
        raw = orjson.dumps([self.time.isoformat(), str(self.id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            when, ident = orjson.loads(raw)
            moment = datetime.fromisoformat(when)
            if moment.tzinfo is None:
                raise ValueError("naive time")
            return cls(moment.astimezone(UTC), UUID(ident))
        except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
            raise ApiError(400, "invalid cursor: pass back the `next_cursor` of the previous page as it was") from None


def _scoped(scope: TenantScope, tenant_column: Any) -> list[ColumnElement[bool]]:
    if scope.empty:
        return [false()]
    return [] if scope.tenants is None else [tenant_column.in_(sorted(scope.tenants))]


async def get_event(engine: AsyncEngine, event_id: UUID, scope: TenantScope) -> Row | None:
    query = select(events).where(events.c.id == event_id, *_scoped(scope, events.c.tenant_id))
    async with engine.connect() as conn:
        found = (await conn.execute(query)).first()
    return dict(found._mapping) if found else None


async def list_events(
    engine: AsyncEngine, where: EventFilter, *, limit: int, after: Cursor | None = None
) -> tuple[list[Row], Cursor | None]:
    """One page, newest first, and the cursor of the next page (None on the last)."""
    conditions = _scoped(where.scope, events.c.tenant_id)
    if where.status is not None:
        conditions.append(events.c.status == where.status.value)
    if where.event_type is not None:
        conditions.append(events.c.type == where.event_type.value)
    if where.since is not None:
        conditions.append(events.c.created_at >= where.since)
    if where.until is not None:
        conditions.append(events.c.created_at < where.until)
    if after is not None:
        conditions.append(tuple_(SORT_TIME, events.c.id) < tuple_(after.time, after.id))
    query = (
        select(events, SORT_TIME.label("sort_time"))
        .where(*conditions)
        .order_by(SORT_TIME.desc(), events.c.id.desc())
        .limit(limit + 1)
    )
    async with engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(query)]
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Cursor(last["sort_time"], last["id"])


def _view(name: str, *columns: str) -> TableClause:
    return table(name, *(column(c) for c in columns))


FUNNEL_DAILY = _view("funnel_daily", "tenant_id", "day", "stage", "leads", "events")
AI_ROI_DAILY = _view("ai_roi_daily", "tenant_id", "day", "actions", "succeeded", "cost_usd", "value_usd", "roi")
ATTRIBUTION_DAILY = _view(
    "attribution_daily", "tenant_id", "day", "touch", "source", "channel", "touches", "leads", "autopilot_touches"
)
VIEW_ORDER = {
    FUNNEL_DAILY.name: ("stage",),
    AI_ROI_DAILY.name: (),
    ATTRIBUTION_DAILY.name: ("touch", "source", "channel"),
}


async def daily_rows(
    engine: AsyncEngine, view: TableClause, scope: TenantScope, *, since: date | None, until: date | None, limit: int
) -> list[Row]:
    """Rows of an analytics view per tenant and UTC day, ``since`` to ``until`` inclusive, by day."""
    c = view.c
    conditions = _scoped(scope, c.tenant_id)
    if since is not None:
        conditions.append(c.day >= since)
    if until is not None:
        conditions.append(c.day <= until)
    order = [c.day, c.tenant_id, *(c[name] for name in VIEW_ORDER[view.name])]
    query = select(view).where(*conditions).order_by(*order).limit(limit)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
