"""One batch into Postgres in one transaction, every write an idempotent upsert keyed by the event id.

Status only moves forward: `pending` never overwrites anything; an outcome replaces `pending`,
`dead_lettered` or an older outcome (a replay's is newer); re-applying the same outcome changes
nothing, so `replay_count` is not bumped twice when a batch is re-read after a crash. The facts of an
event are replaced as a set, so a replay recomputes them (a fixed handler's facts overwrite a broken
one's) instead of adding to them.

How: the batch's rows go by binary ``COPY`` into temporary staging tables, and one
``INSERT ... SELECT ... ON CONFLICT`` per kind moves them into ``events``; the facts of the applied
outcomes are copied straight into their tables once the old ones are deleted. Executing the upserts
row by row through SQLAlchemy's parameter handling was a third of the projection's time, and the
upsert rules, written once below, are the same for one row or a batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.db.schema import FACT_TABLES
from salesflow.domain.outcome import EventStatus
from salesflow.projection.rows import Batch, dead_lettered_event_row, fact_rows

PENDING = EventStatus.PENDING.value
DEAD_LETTERED = EventStatus.DEAD_LETTERED.value

PENDING_COLUMNS = (
    "id",
    "type",
    "tenant_id",
    "lead_id",
    "status",
    "created_at",
    "payload",
    "source_topic",
    "source_partition",
    "source_offset",
)
OUTCOME_COLUMNS = (
    "id",
    "type",
    "tenant_id",
    "lead_id",
    "status",
    "created_at",
    "processed_at",
    "error_message",
    "attempts",
    "replay_count",
    "source_topic",
    "source_partition",
    "source_offset",
)
DEAD_LETTER_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "event_id",
    "reason",
    "detail",
    "record_key",
    "raw",
    "headers",
    "original_timestamp",
)
DEAD_LETTERED_COLUMNS = ("id", "status", "error_message", "source_topic", "source_partition", "source_offset")

# Staging tables live per connection and are emptied by every commit.
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_pending (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS stage_outcomes (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
)


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


# Only fills in what an earlier outcome could not know (the payload); never touches the status.
UPSERT_PENDING = f"""
INSERT INTO events ({_cols(PENDING_COLUMNS)}) SELECT {_cols(PENDING_COLUMNS)} FROM stage_pending
ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at
WHERE events.payload IS NULL
"""

_OUTCOME_SET = ", ".join(
    f"{c} = events.replay_count + EXCLUDED.replay_count" if c == "replay_count" else f"{c} = EXCLUDED.{c}"
    for c in (*OUTCOME_COLUMNS[1:], "updated_at")
)
APPLY_OUTCOMES = f"""
INSERT INTO events ({_cols(OUTCOME_COLUMNS)}) SELECT {_cols(OUTCOME_COLUMNS)} FROM stage_outcomes
ON CONFLICT (id) DO UPDATE SET {_OUTCOME_SET}
WHERE events.status IN ('{PENDING}', '{DEAD_LETTERED}') OR events.processed_at < EXCLUDED.processed_at
RETURNING id
"""

INSERT_DEAD_LETTER = f"""
INSERT INTO dead_letters ({_cols(DEAD_LETTER_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(DEAD_LETTER_COLUMNS) + 1))})
ON CONFLICT DO NOTHING
"""
MARK_DEAD_LETTERED = f"""
INSERT INTO events ({_cols(DEAD_LETTERED_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(DEAD_LETTERED_COLUMNS) + 1))})
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, error_message = EXCLUDED.error_message
WHERE events.status = '{PENDING}'
"""


async def write_batch(engine: AsyncEngine, batch: Batch) -> dict[str, int]:
    """Write the batch; returns the rows written per table (for metrics)."""
    written: dict[str, int] = {}
    async with engine.connect() as conn:
        # The driver's own connection, for COPY; the transaction is asyncpg's, so all or nothing.
        pg: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
        async with pg.transaction():
            await pg.execute(STAGING)
            if batch.pending:
                written["events.pending"] = await _upsert_pending(pg, list(batch.pending.values()))
            if batch.outcomes:
                written.update(await _apply_outcomes(pg, batch))
            if batch.dead_letters:
                written.update(await _record_dead_letters(pg, batch.dead_letters))
    return written


def _records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    return [tuple(row.get(c) for c in columns) for row in rows]


async def _upsert_pending(pg: asyncpg.Connection, rows: list[dict[str, Any]]) -> int:
    await pg.copy_records_to_table("stage_pending", records=_records(rows, PENDING_COLUMNS), columns=PENDING_COLUMNS)
    await pg.execute(UPSERT_PENDING)
    return len(rows)


async def _apply_outcomes(pg: asyncpg.Connection, batch: Batch) -> dict[str, int]:
    rows = [o.event for o in batch.outcomes.values()]
    await pg.copy_records_to_table("stage_outcomes", records=_records(rows, OUTCOME_COLUMNS), columns=OUTCOME_COLUMNS)
    applied = {row["id"] for row in await pg.fetch(APPLY_OUTCOMES)}
    written = {"events.outcome": len(applied)}
    if not applied:
        return written
    facts = fact_rows([o for o in batch.outcomes.values() if o.event_id in applied])
    ids = list(applied)
    for kind, table in FACT_TABLES.items():
        await pg.execute(f"DELETE FROM {table.name} WHERE event_id = ANY($1::uuid[])", ids)
        if facts.get(kind):
            columns = list(facts[kind][0])
            await pg.copy_records_to_table(table.name, records=_records(facts[kind], columns), columns=columns)
            written[table.name] = len(facts[kind])
    return written


async def _record_dead_letters(pg: asyncpg.Connection, rows: list[Mapping[str, Any]]) -> dict[str, int]:
    await pg.executemany(
        INSERT_DEAD_LETTER,
        [tuple(orjson.dumps(r[c]).decode() if c == "headers" else r[c] for c in DEAD_LETTER_COLUMNS) for r in rows],
    )
    with_id = {r["event_id"]: dead_lettered_event_row(r) for r in rows if r["event_id"] is not None}
    if with_id:
        await pg.executemany(MARK_DEAD_LETTERED, _records(list(with_id.values()), DEAD_LETTERED_COLUMNS))
    return {"dead_letters": len(rows)}
