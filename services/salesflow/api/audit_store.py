"""The replay audit trail in Postgres (``replay_audit``, migration 0005): one append-only row per replay
the API accepted, and the page of rows ``GET /api/audit`` serves.

A trigger refuses UPDATE, DELETE and TRUNCATE on the table; rows are only ever inserted, by
``replays.queue_replay`` in the transaction that puts the replay's records into the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salesflow.api.principal import Principal

AuditKind = Literal["event", "batch", "dead_letter"]

replay_audit = Table(
    "replay_audit",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("requested_at", DateTime(timezone=True)),
    Column("subject", Text),
    Column("issuer", Text),
    Column("caller_tenants", ARRAY(Text)),
    Column("kind", Text),
    Column("filter", JSONB),
    Column("tenants", ARRAY(Text)),
    Column("ids", ARRAY(Text)),
    Column("count", Integer),
    Column("request_id", Text),
    Column("trace_id", Text),
)


@dataclass(frozen=True)
class AuditEntry:
    """What one replay request did: by whom, on which records, and how to find its request and trace."""

    who: Principal
    kind: AuditKind
    filter: dict[str, Any]
    tenants: list[str]
    ids: list[str]
    request_id: str | None
    trace_id: str | None


async def record(conn: AsyncConnection, entry: AuditEntry) -> int:
    """Insert ``entry`` in the caller's transaction; its id."""
    who = entry.who
    values = {
        "subject": who.subject,
        "issuer": who.issuer,
        "caller_tenants": None if who.tenants is None else sorted(who.tenants),
        "kind": entry.kind,
        "filter": entry.filter,
        "tenants": sorted(set(entry.tenants)),
        "ids": entry.ids,
        "count": len(entry.ids),
        "request_id": entry.request_id,
        "trace_id": entry.trace_id,
    }
    found = (await conn.execute(insert(replay_audit).values(values).returning(replay_audit.c.id))).scalar_one()
    return int(found)


async def page(
    engine: AsyncEngine, *, limit: int, before: int | None = None, tenant_id: str | None = None
) -> list[dict[str, Any]]:
    """Rows newest first, ids below ``before``; of replays that touched ``tenant_id`` when given."""
    c = replay_audit.c
    query = select(replay_audit).order_by(c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(c.id < before)
    if tenant_id is not None:
        query = query.where(c.tenants.contains([tenant_id]))
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
