"""One batch into Postgres in one transaction, every write an idempotent upsert keyed by the event id.

Status only moves forward: `pending` never overwrites anything; an outcome replaces `pending`,
`dead_lettered` or an older outcome (a replay's is newer); re-applying the same outcome changes
nothing, so `replay_count` is not bumped twice when a batch is re-read after a crash. The facts of an
event are replaced as a set, so a replay recomputes them (a fixed handler's facts overwrite a broken
one's) instead of adding to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salesflow.db.schema import FACT_TABLES, dead_letters, events
from salesflow.domain.outcome import EventStatus
from salesflow.projection.rows import Batch, dead_lettered_event_row, fact_rows, outcome_event_row


async def write_batch(engine: AsyncEngine, batch: Batch) -> dict[str, int]:
    """Write the batch; returns the rows written per table (for metrics)."""
    written: dict[str, int] = {}
    async with engine.begin() as conn:
        if batch.pending:
            written["events.pending"] = await _upsert_pending(conn, list(batch.pending.values()))
        if batch.outcomes:
            written.update(await _apply_outcomes(conn, batch))
        if batch.dead_letters:
            written.update(await _record_dead_letters(conn, batch.dead_letters))
    return written


async def _upsert_pending(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    stmt = insert(events)
    stmt = stmt.on_conflict_do_update(
        index_elements=[events.c.id],
        # Only fills in what an earlier outcome could not know (the payload); never touches the status.
        set_={"payload": stmt.excluded.payload, "updated_at": stmt.excluded.updated_at},
        where=events.c.payload.is_(None),
    )
    await conn.execute(stmt, rows)
    return len(rows)


async def _apply_outcomes(conn: AsyncConnection, batch: Batch) -> dict[str, int]:
    rows = [outcome_event_row(o) for o in batch.outcomes.values()]
    stmt = insert(events)
    ex = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[events.c.id],
        set_={
            "type": ex.type,
            "tenant_id": ex.tenant_id,
            "lead_id": ex.lead_id,
            "status": ex.status,
            "created_at": ex.created_at,
            "processed_at": ex.processed_at,
            "error_message": ex.error_message,
            "attempts": ex.attempts,
            "replay_count": events.c.replay_count + ex.replay_count,
            "source_topic": ex.source_topic,
            "source_partition": ex.source_partition,
            "source_offset": ex.source_offset,
            "updated_at": ex.updated_at,
        },
        # Plain comparisons: an expanding IN cannot be used in an executemany.
        where=or_(
            events.c.status == EventStatus.PENDING.value,
            events.c.status == EventStatus.DEAD_LETTERED.value,
            events.c.processed_at < ex.processed_at,
        ),
    ).returning(events.c.id)
    applied = {row.id for row in (await conn.execute(stmt, rows))}
    written = {"events.outcome": len(applied)}
    if not applied:
        return written
    facts = fact_rows([o for o in batch.outcomes.values() if o.event_id in applied])
    for kind, table in FACT_TABLES.items():
        await conn.execute(delete(table).where(table.c.event_id.in_(applied)))
        if facts.get(kind):
            await conn.execute(insert(table), facts[kind])
            written[table.name] = len(facts[kind])
    return written


async def _record_dead_letters(conn: AsyncConnection, rows: list[Mapping[str, Any]]) -> dict[str, int]:
    await conn.execute(insert(dead_letters).on_conflict_do_nothing(), rows)
    with_id = {r["event_id"]: dead_lettered_event_row(r) for r in rows if r["event_id"] is not None}
    if with_id:
        stmt = insert(events)
        stmt = stmt.on_conflict_do_update(
            index_elements=[events.c.id],
            set_={"status": stmt.excluded.status, "error_message": stmt.excluded.error_message},
            where=events.c.status == EventStatus.PENDING.value,
        )
        await conn.execute(stmt, list(with_id.values()))
    return {"dead_letters": len(rows)}
