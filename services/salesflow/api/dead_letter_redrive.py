"""The API's dead-letter redrive: chosen dead letters go back to their original topic and partition
through the outbox, in the transaction that marks them redriven and writes the audit row.

All three commit, or none: two requests for the same dead letter queue it once (the row is claimed
by ``UPDATE ... WHERE redriven_at IS NULL``), and an audit row always stands for records that will
reach Kafka. A tenant's token sees the dead letters whose original record names its tenant; one that
names none (not JSON, no ``tenantid``) is an admin's to redrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import and_, func, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.api import audit_store
from salesflow.api.audit_store import AuditEntry
from salesflow.api.replays import OutboxRecord, insert_rows
from salesflow.db.schema import dead_letters
from salesflow.domain.records import RecordIn
from salesflow.projection.dead_letter_reading import claimed_tenant
from salesflow.replay.deadletters import DeadLetterId, Row, redrive_headers, row_id


def tenant_of(row: Row) -> str | None:
    """The tenant the dead letter's original record names, if any."""
    headers = tuple((k, str(v).encode()) for k, v in (row["headers"] or {}).items())
    record = RecordIn(
        topic=row["topic"], partition=row["partition"], offset=row["offset"], timestamp_ms=None,
        key=row["record_key"], value=row["raw"], headers=headers,
    )  # fmt: skip
    return claimed_tenant(record)


def visible(rows: Sequence[Row], tenants: frozenset[str] | None) -> list[Row]:
    """The rows a caller of ``tenants`` (None: every tenant) may redrive."""
    return list(rows) if tenants is None else [r for r in rows if tenant_of(r) in tenants]


async def queue_redrive(engine: AsyncEngine, entry: AuditEntry, rows: Sequence[Row]) -> tuple[list[str], int | None]:
    """Queue ``rows`` (in their original order per partition) and mark them redriven; the ids queued
    and the audit row's id. Rows another request redrove meanwhile are skipped; none left: no row."""
    c = dead_letters.c
    ids = sorted(row_id(r) for r in rows)
    if not ids:
        return [], None
    match = or_(*(and_(c.topic == i.topic, c.partition == i.partition, c.offset == i.offset) for i in ids))
    claim = (
        update(dead_letters)
        .where(match, c.redriven_at.is_(None))
        .values(redriven_at=func.now())
        .returning(*dead_letters.c)
    )
    async with engine.begin() as conn:
        claimed = sorted((dict(r._mapping) for r in await conn.execute(claim)), key=row_id)
        if not claimed:
            return [], None  # the claim changed nothing: the transaction ends empty
        done = [str(row_id(r)) for r in claimed]
        tenants = [tenant_of(r) or "" for r in claimed]
        audit_id = await audit_store.record(conn, replace(entry, tenants=tenants, ids=done))
        await insert_rows(conn, [_outbox_record(r) for r in claimed])
    return done, audit_id


def _outbox_record(row: Row) -> OutboxRecord:
    """The row as the outbox takes it: the original's key and bytes, to its topic and partition."""
    ident: DeadLetterId = row_id(row)
    record = RecordIn(
        topic=ident.topic, partition=ident.partition, offset=ident.offset, timestamp_ms=None,
        key=row["record_key"], value=row["raw"], headers=(),
    )  # fmt: skip
    return record, redrive_headers(row)
