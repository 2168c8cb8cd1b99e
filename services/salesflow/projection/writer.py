"""One batch into Postgres in one transaction, every write an idempotent upsert keyed by the event id.

Status only moves forward: `pending` never overwrites anything; an outcome replaces `pending`,
`dead_lettered` or an older outcome (a replay's is newer); re-applying the same outcome changes
nothing, so `replay_count` is not bumped twice when a batch is re-read after a crash. The facts of an
event are replaced as a set, so a replay recomputes them (a fixed handler's facts overwrite a broken
one's) instead of adding to them.

An event belongs to the tenant that first sent its id: every upsert is guarded so that a record of
another tenant never touches the row (its status, payload or facts), and such records come back as
``id_conflict`` rejections, written to ``rejected_records`` in the same transaction.

How: the batch's rows go by binary ``COPY`` into temporary staging tables, and one
``INSERT ... SELECT ... ON CONFLICT`` per kind moves them into ``events``; the facts of the applied
outcomes are copied straight into their tables once the old ones are deleted. Executing the upserts
row by row through SQLAlchemy's parameter handling was a third of the projection's time, and the
upsert rules, written once below, are the same for one row or a batch. An event whose source record
and outcome share a batch is written once, by its outcome with the payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.db.schema import FACT_TABLES
from salesflow.domain.outcome import EventStatus
from salesflow.projection.poll_groups import Batch, conflict
from salesflow.projection.rejects import INSERT_REJECTED, rejected_row
from salesflow.projection.rows import (
    FACT_COLUMNS,
    DeadLetterRow,
    OutcomeRows,
    PendingRow,
    Rejection,
    dead_lettered_event_row,
    fact_rows,
)

PENDING = EventStatus.PENDING.value
DEAD_LETTERED = EventStatus.DEAD_LETTERED.value

# An events row: who and what (both kinds of row), then each kind's own, then where it was read.
_EVENT = ("id", "type", "tenant_id", "lead_id", "status", "created_at")
_SOURCE = ("source_topic", "source_partition", "source_offset")
PENDING_COLUMNS = (*_EVENT, "payload", *_SOURCE)
OUTCOME_COLUMNS = (*_EVENT, "processed_at", "error_message", "attempts", "replay_count", *_SOURCE)
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
DEAD_LETTERED_COLUMNS = (
    "id",
    "tenant_id",
    "status",
    "error_message",
    "source_topic",
    "source_partition",
    "source_offset",
)

# Staging tables live per connection and are emptied by every commit.
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_pending (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS stage_outcomes (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
)


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


# A row without a tenant (made by a dead letter whose bytes named none) is claimed by the first tenant.
SAME_OWNER = "(events.tenant_id IS NULL OR events.tenant_id = EXCLUDED.tenant_id)"

# Only fills in what an earlier outcome could not know (the payload); never touches the status.
UPSERT_PENDING = f"""
INSERT INTO events ({_cols(PENDING_COLUMNS)}) SELECT {_cols(PENDING_COLUMNS)} FROM stage_pending
ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at,
    tenant_id = EXCLUDED.tenant_id
WHERE events.payload IS NULL AND {SAME_OWNER}
RETURNING id
"""

# An outcome's row also carries the payload when its source record came in the same batch: the event
# is then written once, not inserted as `pending` and updated at once (an update of an indexed status
# is a new row version and new entries in every index).
STAGED_OUTCOME_COLUMNS = (*OUTCOME_COLUMNS, "payload")
_OUTCOME_SET = ", ".join(
    f"{c} = events.replay_count + EXCLUDED.replay_count" if c == "replay_count" else f"{c} = EXCLUDED.{c}"
    for c in (*OUTCOME_COLUMNS[1:], "updated_at")
)
# ``inserted``: a new row (its xmax is 0), which cannot have facts yet. The payload, as `pending`
# writes it, only fills in one the row does not have yet.
APPLY_OUTCOMES = f"""
INSERT INTO events ({_cols(STAGED_OUTCOME_COLUMNS)}) SELECT {_cols(STAGED_OUTCOME_COLUMNS)} FROM stage_outcomes
ON CONFLICT (id) DO UPDATE SET {_OUTCOME_SET}, payload = COALESCE(events.payload, EXCLUDED.payload)
WHERE (events.status IN ('{PENDING}', '{DEAD_LETTERED}') OR events.processed_at < EXCLUDED.processed_at)
    AND {SAME_OWNER}
RETURNING id, xmax = 0 AS inserted
"""

# Lookups by a list of ids join ``unnest`` of it rather than test ``= ANY``: Postgres planned
# ``= ANY($1)`` (a parameter of asyncpg's prepared statements) on a table that grew since it was last
# analysed as a sequential scan, which made each poll's writes cost in proportion to the table.
# The existing rows of the outcomes' events, locked until the commit (so what they say holds for the
# upsert after it): whether each already had an outcome applied, and so facts to replace.
LOCK_PRIOR = """
SELECT e.id, e.processed_at IS NOT NULL AS had_outcome
FROM unnest($1::uuid[]) AS s(id) JOIN events e ON e.id = s.id
ORDER BY e.id
FOR UPDATE OF e
"""
# The given (id, tenant) pairs whose row (after the upsert: another writer's insert is seen) is
# another tenant's.
CONFLICTS = """
SELECT s.id FROM unnest($1::uuid[], $2::text[]) AS s(id, tenant_id) JOIN events e ON e.id = s.id
WHERE e.tenant_id IS DISTINCT FROM s.tenant_id
"""
OWNERS = """
SELECT e.id, e.tenant_id FROM unnest($1::uuid[]) AS s(id) JOIN events e ON e.id = s.id
WHERE e.tenant_id IS NOT NULL
"""


def _delete_facts(table: str) -> str:
    return f"DELETE FROM {table} f USING unnest($1::uuid[]) AS s(id) WHERE f.event_id = s.id"


INSERT_DEAD_LETTER = f"""
INSERT INTO dead_letters ({_cols(DEAD_LETTER_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(DEAD_LETTER_COLUMNS) + 1))})
ON CONFLICT DO NOTHING
"""
MARK_DEAD_LETTERED = f"""
INSERT INTO events ({_cols(DEAD_LETTERED_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(DEAD_LETTERED_COLUMNS) + 1))})
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, error_message = EXCLUDED.error_message
WHERE events.status = '{PENDING}' AND events.tenant_id IS NOT DISTINCT FROM EXCLUDED.tenant_id
"""


@dataclass
class Written:
    """What one write did: rows per table (for metrics) and the records kept aside, with why."""

    rows: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)


async def write_batch(engine: AsyncEngine, batch: Batch) -> Written:
    """Write the batch in one transaction: all of it, or nothing (then the error is raised)."""
    written = Written(rejected=list(batch.rejected))
    async with engine.connect() as conn:
        # The driver's own connection, for COPY; the transaction is asyncpg's, so all or nothing.
        pg = cast("asyncpg.Connection[asyncpg.Record]", (await conn.get_raw_connection()).driver_connection)
        async with pg.transaction():
            await pg.execute(STAGING)
            # An event whose source record and outcome share the batch (the batch gave both to one
            # tenant) is written by its outcome, payload included; its `pending` row only where the
            # outcome was not applied (an existing row is newer, or another tenant's).
            written_with_outcome: set[UUID] = set()
            if batch.outcomes:
                written_with_outcome = await _apply_outcomes(pg, batch, written)
            if len(batch.pending) > len(written_with_outcome):
                await _upsert_pending(pg, batch, written, skip=written_with_outcome)
            if written_with_outcome:
                written.rows["events.pending"] = written.rows.get("events.pending", 0) + len(written_with_outcome)
            if batch.dead_letters:
                await _record_dead_letters(pg, batch.dead_letters, written)
            if written.rejected:
                await pg.executemany(INSERT_REJECTED, [rejected_row(r) for r in written.rejected])
    return written


def _records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Each row's values in ``columns`` order; every row holds every column (``rows`` builds them so)."""
    values = itemgetter(*columns)  # one C call a row: the generator it replaced was a tenth of the CPU
    return [values(row) for row in rows]


async def _upsert_pending(pg: asyncpg.Connection, batch: Batch, written: Written, skip: set[UUID]) -> None:
    pending = {i: p for i, p in batch.pending.items() if i not in skip}
    rows = [p.row for p in pending.values()]
    await pg.copy_records_to_table("stage_pending", records=_records(rows, PENDING_COLUMNS), columns=PENDING_COLUMNS)
    touched = {row["id"] for row in await pg.fetch(UPSERT_PENDING)}
    # A row left untouched had its payload already, or is another tenant's: only those are looked up.
    conflicts = await _conflicts(pg, [p for i, p in pending.items() if i not in touched])
    written.rejected += [conflict(pending[i]) for i in conflicts]
    written.rows["events.pending"] = len(rows) - len(conflicts)


async def _apply_outcomes(pg: asyncpg.Connection, batch: Batch, written: Written) -> set[UUID]:
    """Apply the batch's outcomes; returns the events whose `pending` row they wrote too."""
    ids = list(batch.outcomes)
    had_outcome = {row["id"]: row["had_outcome"] for row in await pg.fetch(LOCK_PRIOR, ids)}
    values = itemgetter(*OUTCOME_COLUMNS)
    pending, outcomes = batch.pending, batch.outcomes
    records = [(*values(o.event), p.row["payload"] if (p := pending.get(i)) else None) for i, o in outcomes.items()]
    await pg.copy_records_to_table("stage_outcomes", records=records, columns=STAGED_OUTCOME_COLUMNS)
    applied = {row["id"]: row["inserted"] for row in await pg.fetch(APPLY_OUTCOMES)}
    conflicts = await _conflicts(pg, [o for i, o in batch.outcomes.items() if i not in applied])
    written.rejected += [conflict(batch.outcomes[i]) for i in conflicts]
    written.rows["events.outcome"] = len(applied)
    if not applied:
        return set()
    # Facts exist only where an outcome was applied before: a row that had none (new, pending or
    # dead-lettered) has none to replace. A row that appeared after the lock (another writer's
    # insert, then our update) is treated as having some.
    replaced = [i for i, inserted in applied.items() if had_outcome.get(i, not inserted)]
    facts = fact_rows([o for o in batch.outcomes.values() if o.event_id in applied])
    for kind, table in FACT_TABLES.items():
        if replaced:
            await pg.execute(_delete_facts(table.name), replaced)
        if facts.get(kind):
            columns = FACT_COLUMNS[kind]
            await pg.copy_records_to_table(table.name, records=_records(facts[kind], columns), columns=columns)
            written.rows[table.name] = len(facts[kind])
    return {i for i in applied if i in pending}


async def _conflicts(pg: asyncpg.Connection, items: Sequence[PendingRow | OutcomeRows]) -> set[UUID]:
    """The event ids of ``items`` whose row belongs to another tenant."""
    if not items:
        return set()
    rows = await pg.fetch(CONFLICTS, [i.event_id for i in items], [i.tenant_id for i in items])
    return {row["id"] for row in rows}


async def _record_dead_letters(pg: asyncpg.Connection, items: list[DeadLetterRow], written: Written) -> None:
    ids = list({d.event_id for d in items if d.event_id is not None})
    owners: dict[UUID, str] = {row["id"]: row["tenant_id"] for row in await pg.fetch(OWNERS, ids)} if ids else {}
    kept: list[DeadLetterRow] = []
    for item in items:
        owner = owners.get(item.event_id) if item.event_id is not None else None
        # One that names no tenant is kept as a dead letter, but marks no owned row (the guard below).
        if owner is not None and item.tenant_id is not None and owner != item.tenant_id:
            written.rejected.append(conflict(item))
        else:
            kept.append(item)
    if not kept:
        return
    await pg.executemany(
        INSERT_DEAD_LETTER,
        [
            tuple(orjson.dumps(d.row[c]).decode() if c == "headers" else d.row[c] for c in DEAD_LETTER_COLUMNS)
            for d in kept
        ],
    )
    marks = {d.event_id: dead_lettered_event_row(d) for d in kept if d.event_id is not None}
    if marks:
        await pg.executemany(MARK_DEAD_LETTERED, _records(list(marks.values()), DEAD_LETTERED_COLUMNS))
    written.rows["dead_letters"] = len(kept)
