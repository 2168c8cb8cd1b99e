"""The API's replays: the original records go into the outbox in the transaction that writes the audit row.

Both commit, or neither: a replay that left no audit row never reaches Kafka, and an audit row always
stands for records that will. ``salesflow outbox relay``, pointed at the pipeline's database (its
default), publishes them: to the original's topic and partition (the row's ``partition``), with its
key, value and headers, plus ``salesflow.replay`` naming the original position.

The outbox holds header values as text: a record with a header that is not UTF-8 is not replayed
through the API (``mismatch``, saying why); ``salesflow replay`` (the CLI) replays it as bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salesflow.api import audit_store
from salesflow.api.audit_store import AuditEntry
from salesflow.domain.records import RecordIn
from salesflow.outbox.bus import KEY_LOCK_NAMESPACE
from salesflow.outbox.schema import TABLE
from salesflow.replay.republish import ReplayResult, originals, traced_replay_headers
from salesflow.replay.store import EventPosition
from salesflow.settings import Settings

# As the outbox bus writes rows (outbox/bus.py), with the per-key lock, plus the pinned partition.
_INSERT = text(
    f"INSERT INTO {TABLE} (topic, partition, key, value, headers) "
    "SELECT :topic, :partition, :key, :value, CAST(:headers AS jsonb) "
    "FROM (SELECT pg_advisory_xact_lock(:namespace, hashtext(:lock_key))) AS serialised"
)

Queued = tuple[EventPosition, RecordIn, list[tuple[str, str]]]


async def queue_replay(
    engine: AsyncEngine, settings: Settings, entry: AuditEntry, selected: Sequence[EventPosition]
) -> tuple[list[ReplayResult], int | None]:
    """Replay ``selected``: one result per event, in their order, and the audit row's id (None when
    nothing could be replayed, so nothing was written)."""
    found, results = await originals(settings, selected)
    queued: list[Queued] = []
    for event, record in found:
        headers = text_headers(traced_replay_headers(record))  # its traceparent: this request's
        if headers is None:
            results[event.event_id] = ReplayResult(
                event.event_id, "mismatch", "a header value is not UTF-8; replay it with the CLI", event.position
            )
        else:
            queued.append((event, record, headers))
    audit_id = None
    if queued:
        chosen = {e.event_id for e, _, _ in queued}
        ids = [str(e.event_id) for e in selected if e.event_id in chosen]  # in the order the request chose
        entry = replace(entry, tenants=[e.tenant_id or "" for e, _, _ in queued], ids=ids)
        async with engine.begin() as conn:
            audit_id = await audit_store.record(conn, entry)
            await insert_rows(conn, [(record, headers) for _, record, headers in queued])
        for event, _, _ in queued:
            results[event.event_id] = ReplayResult(event.event_id, "queued", original=event.position)
    return [results[e.event_id] for e in selected], audit_id


OutboxRecord = tuple[RecordIn, list[tuple[str, str]]]  # the record to publish, with its headers as text


async def insert_rows(conn: AsyncConnection, records: Sequence[OutboxRecord]) -> None:
    """Put ``records`` into the outbox, each pinned to its topic's partition, in the caller's transaction."""
    params: list[dict[str, Any]] = [
        {
            "topic": record.topic,
            "partition": record.partition,
            "key": record.key or b"",
            "value": record.value or b"",
            "headers": orjson.dumps(headers).decode(),
            "namespace": KEY_LOCK_NAMESPACE,
            "lock_key": (record.key or b"").decode("utf-8", "replace"),
        }
        for record, headers in records
    ]
    await conn.execute(_INSERT, params)


def text_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, str]] | None:
    try:
        return [(name, value.decode()) for name, value in headers]
    except (UnicodeDecodeError, AttributeError):
        return None
