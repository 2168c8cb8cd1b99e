"""The facts a clean, fault-free run leaves for the same events: the batch core (``process_batch``)
run offline over the events as they were sent, no Kafka (as bench/core.py runs it), and the fact
rows Postgres holds, both as comparable tuples per event."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.bootstrap import build_processor
from salesflow.domain.events import EventType
from salesflow.domain.outcome import Outcome
from salesflow.domain.outputs import FACT_KINDS, fact_columns
from salesflow.domain.records import RecordIn
from salesflow.handlers.registry import DEFAULT_REGISTRY
from salesflow.metrics import PipelineMetrics
from salesflow.producer.envelope import encode, record_key
from salesflow.settings import Settings

FactRows = Counter[tuple[str, tuple[Any, ...]]]  # (table, normalized row) -> how many

_outcome = msgspec.json.Decoder(Outcome)


def _plain(value: Any) -> Any:
    """One form for a value read from JSON and from Postgres."""
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)
    if isinstance(value, float | Decimal):
        return round(float(value), 6)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return _plain(value.value)
    return value


async def clean_run_facts(settings: Settings, events: list[dict[str, Any]]) -> dict[str, FactRows]:
    """Per event id, the fact rows the core makes for it (one record each, offset order)."""
    processor = build_processor(settings, PipelineMetrics(), DEFAULT_REGISTRY)
    records = [
        RecordIn(
            topic=settings.topics.source(EventType(e["type"])),
            partition=0,
            offset=n,
            timestamp_ms=None,
            key=record_key(e),
            value=encode(e),
            headers=(("content-type", b"application/cloudevents+json"),),
        )
        for n, e in enumerate(events)
    ]
    facts: dict[str, FactRows] = {}
    for start in range(0, len(records), 500):
        for out in await processor.process_batch(records[start : start + 500]):
            for record in out:
                if record.topic == settings.topics.outcomes and record.value is not None:
                    outcome = _outcome.decode(record.value)
                    rows = facts.setdefault(str(outcome.event_id), Counter())
                    for fact in outcome.facts:
                        columns = fact_columns(type(fact))
                        rows[(fact.table, tuple(_plain(getattr(fact, c)) for c in columns))] += 1
    return facts


async def recorded_facts(engine: AsyncEngine, ids: list[UUID]) -> dict[str, FactRows]:
    """Per event id, the fact rows Postgres holds."""
    found: dict[str, FactRows] = {}
    async with engine.connect() as conn:
        for model in FACT_KINDS.values():
            columns = fact_columns(model)
            select = ", ".join(f'"{c}"' for c in columns)
            rows = await conn.execute(
                text(f"SELECT {select} FROM {model.table} WHERE event_id = ANY(:ids)"), {"ids": ids}
            )
            for row in rows:
                values = tuple(_plain(v) for v in row)
                found.setdefault(str(row.event_id), Counter())[(model.table, values)] += 1
    return found
