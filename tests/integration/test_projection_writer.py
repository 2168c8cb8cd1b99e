"""The projection's writer on the real database: an event whose source record and outcome share a batch
is written once, by its outcome, and ends exactly as if its `pending` row had been written first.

The writer is called directly (``write_batch``) with batches made by the projection's own parsing, so
each case decides which records share a batch; the projection's consume loop is covered elsewhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.domain.events import EventType
from salesflow.domain.records import RecordIn
from salesflow.producer.envelope import encode
from salesflow.projection.poll_groups import Batch
from salesflow.projection.rows import Item, outcome_rows, pending_row
from salesflow.projection.writer import write_batch
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.integration.projection_kit import event_rows, outcome_of, rows

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def source(event: dict[str, Any], offset: int = 0) -> Item:
    record = RecordIn("crafted.source", 0, offset, 1, None, encode(event), ())
    item = pending_row(record, max_bytes=1_000_000)
    assert item is not None
    return item


def outcome(event: dict[str, Any], processed_at: datetime, offset: int = 0, **override: Any) -> Item:
    value = orjson.dumps(outcome_of(event, processed_at=processed_at.isoformat(), **override))
    return outcome_rows(RecordIn("crafted.outcomes", 0, offset, 2, None, value, ()))


async def funnel_stages(engine: AsyncEngine, event: dict[str, Any]) -> list[str]:
    found = await rows(engine, "SELECT stage FROM funnel_facts WHERE event_id = CAST(:i AS uuid)", i=event["id"])
    return [f["stage"] for f in found]


@pytest.fixture
def tenant(settings: Settings) -> str:
    return f"w-{settings.topic_prefix.split('.')[0]}"


async def test_source_and_outcome_in_one_batch_make_one_final_row_with_the_payload(
    engine: AsyncEngine, tenant: str
) -> None:
    event = event_dict(EventType.LEAD_CREATED, tenant)
    written = await write_batch(engine, Batch.of([source(event), outcome(event, NOW)]))
    assert written.rows["events.pending"] == 1 and written.rows["events.outcome"] == 1
    assert written.rejected == []
    row = (await event_rows(engine, [event["id"]]))[event["id"]]
    assert row["status"] == "processed" and row["processed_at"] == NOW
    assert row["payload"] == orjson.loads(encode(event))
    assert await funnel_stages(engine, event) == ["created"]


async def test_a_pair_whose_outcome_is_older_than_the_row_only_fills_in_the_payload(
    engine: AsyncEngine, tenant: str
) -> None:
    event = event_dict(EventType.LEAD_CREATED, tenant)
    # The newer outcome came first, alone: a final row without a payload.
    await write_batch(engine, Batch.of([outcome(event, NOW, offset=1, attempts=2)]))
    before = (await event_rows(engine, [event["id"]]))[event["id"]]
    assert before["payload"] is None and before["attempts"] == 2
    # Then the source record, with an older outcome of the same event (a re-read of an earlier one).
    older = NOW - timedelta(minutes=5)
    written = await write_batch(engine, Batch.of([source(event), outcome(event, older, attempts=1)]))
    assert written.rows["events.outcome"] == 0 and written.rows["events.pending"] == 1
    after = (await event_rows(engine, [event["id"]]))[event["id"]]
    assert after["payload"] == orjson.loads(encode(event))
    assert (after["status"], after["processed_at"], after["attempts"]) == ("processed", NOW, 2)
    assert await funnel_stages(engine, event) == ["created"]


async def test_a_pair_never_replaces_a_payload_the_row_has(engine: AsyncEngine, tenant: str) -> None:
    event = event_dict(EventType.LEAD_CREATED, tenant)
    await write_batch(engine, Batch.of([source(event)]))
    changed = {**event, "data": {**event["data"], "campaign": "rewritten"}}
    await write_batch(engine, Batch.of([source(changed, offset=1), outcome(changed, NOW)]))
    row = (await event_rows(engine, [event["id"]]))[event["id"]]
    assert row["status"] == "processed"
    assert row["payload"] == orjson.loads(encode(event))  # the first one sent, as `pending` keeps it
