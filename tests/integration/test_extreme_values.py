"""Property: an event with extreme values never stops the line (issue 11).

Hypothesis draws events of every type with values at, and just past, the contract's limits: any Unicode
(astral characters, no surrogates), the longest fields, the money, count and time bounds, extra fields
of every JSON shape, and now and then a NUL. They go onto the real broker interleaved with ordinary
events, through a real worker and projection, and each drawn event must end as the contract says:
accepted ones `processed` with their row, payload and facts in Postgres; refused ones in `dead_letters`
with the reason the contract gives. Every ordinary event around them is `processed`, and events sent
after them are still projected: the projection keeps moving.

Bounded: a fixed number of examples, derandomized (the same events on every run), no shrinking (a
failure lists the events it concerns).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.bootstrap import event_producer
from salesflow.db.engine import create_engine
from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType
from salesflow.errors import InvalidEvent
from salesflow.kafka_admin import create_topics
from salesflow.producer.envelope import encode
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.extreme_events import draw_events
from tests.harness import wait_for

pytestmark = pytest.mark.integration

EXAMPLES = 90


async def test_extreme_events_end_processed_or_dead_lettered_and_the_line_keeps_moving(
    settings_factory: SettingsFactory, service_factory: Any
) -> None:
    config = settings_factory()
    await create_topics(config)
    extreme = draw_events(EXAMPLES)
    ordinary = [event_dict(EventType(e["type"]), "ordinary", lead_id=f"lead-{n}") for n, e in enumerate(extreme)]
    # The contract is the oracle: what it accepts must be stored, what it refuses dead-lettered so.
    verdicts = [_verdict(encode(e), config.max_event_bytes) for e in extreme]
    assert 10 < sum(v is None for v in verdicts) < len(verdicts) - 10, "both outcomes are exercised"

    worker = service_factory("worker", config)
    projection = service_factory("projection", config)
    positions = await _produce_interleaved(config, extreme, ordinary)
    engine = create_engine(config.database_url)
    try:
        ordinary_ids = [UUID(e["id"]) for e in ordinary]
        await wait_for(lambda: _processed(engine, ordinary_ids), timeout=120, what="every ordinary event")
        accepted = [(e, p) for e, p, v in zip(extreme, positions, verdicts, strict=True) if v is None]
        refused = [(p, v) for p, v in zip(positions, verdicts, strict=True) if v is not None]
        accepted_ids = [UUID(e["id"]) for e, _ in accepted]
        await wait_for(lambda: _final(engine, accepted_ids), timeout=60, what="the accepted ones' final status")
        not_processed = await _statuses(engine, accepted_ids, exclude="processed")
        assert not not_processed, f"accepted but not processed: {not_processed[:5]}"
        await wait_for(lambda: _dead_lettered(engine, refused), timeout=60, what="the refused ones' dead letters")
        await _check_rows_and_facts(engine, [e for e, _ in accepted])
        # The projection keeps moving: events sent after all of that are projected too.
        after = [event_dict(EventType.LEAD_CREATED, "after", lead_id=f"after-{n}") for n in range(20)]
        await _produce_interleaved(config, [], after)
        await wait_for(lambda: _processed(engine, [UUID(e["id"]) for e in after]), timeout=60, what="later events")
    finally:
        await engine.dispose()
    assert worker.running and projection.running, worker.log_tail() + projection.log_tail()


def _verdict(value: bytes, max_bytes: int) -> str | None:
    try:
        decode_event(value, max_bytes=max_bytes)
    except InvalidEvent as refused:
        return refused.reason.value
    return None


async def _produce_interleaved(
    config: Settings, extreme: list[dict[str, Any]], ordinary: list[dict[str, Any]]
) -> list[tuple[str, int, int]]:
    """Each extreme event after an ordinary one, on its type's topic; where each extreme one landed."""
    positions = []
    async with event_producer(config) as producer:
        for n, event in enumerate(ordinary):
            await (await producer.send_event(event))
            if n < len(extreme):
                key = f"{extreme[n]['tenantid']}:{extreme[n]['data']['lead_id']}".encode()
                topic = config.topics.source(EventType(extreme[n]["type"]))
                sent = await (await producer.send_raw(topic, encode(extreme[n]), key=key))
                positions.append((sent.topic, sent.partition, sent.offset))
    return positions


async def _final(engine: AsyncEngine, ids: list[UUID]) -> bool:
    query = text("SELECT count(*) FROM events WHERE id = ANY(:ids) AND status <> 'pending'")
    async with engine.connect() as conn:
        return int((await conn.execute(query, {"ids": ids})).scalar_one()) == len(ids)


async def _statuses(engine: AsyncEngine, ids: list[UUID], *, exclude: str) -> list[tuple[Any, ...]]:
    query = text("SELECT id, status, error_message FROM events WHERE id = ANY(:ids) AND status <> :exclude")
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(query, {"ids": ids, "exclude": exclude})]


async def _processed(engine: AsyncEngine, ids: list[UUID]) -> bool:
    query = text("SELECT count(*) FROM events WHERE id = ANY(:ids) AND status = 'processed'")
    async with engine.connect() as conn:
        return int((await conn.execute(query, {"ids": ids})).scalar_one()) == len(ids)


async def _dead_lettered(engine: AsyncEngine, refused: list[tuple[tuple[str, int, int], str]]) -> bool:
    """Every refused record is in ``dead_letters``; one there with another reason fails at once."""
    query = text('SELECT topic, partition, "offset", reason FROM dead_letters WHERE topic = ANY(:topics)')
    async with engine.connect() as conn:
        rows = await conn.execute(query, {"topics": sorted({p[0] for p, _ in refused})})
        found = {(r.topic, r.partition, r.offset): r.reason for r in rows}
    wrong = [(p, reason, found[p]) for p, reason in refused if p in found and found[p] != reason]
    assert not wrong, f"dead-lettered for another reason than the contract's: {wrong[:5]}"
    return all(p in found for p, _ in refused)


FACTS = {
    "lead.created": "SELECT count(*) FROM funnel_facts WHERE event_id = :id AND stage = 'created'",
    "autopilot.action_executed": "SELECT count(*) FROM ai_action_facts WHERE event_id = :id AND cost_usd = :cost",
    "message.sent": "SELECT count(*) FROM message_facts WHERE event_id = :id AND sent_at = :sent",
    "sequence.step_executed": "SELECT count(*) FROM sequence_step_facts WHERE event_id = :id AND step_index = :step",
}


async def _check_rows_and_facts(engine: AsyncEngine, accepted: list[dict[str, Any]]) -> None:
    """Each accepted event's row holds its tenant, time and payload, and its type's fact is there."""
    wrong = []
    async with engine.connect() as conn:
        for event in accepted:
            row = (
                await conn.execute(
                    text("SELECT tenant_id, lead_id, created_at, payload FROM events WHERE id = :id"),
                    {"id": UUID(event["id"])},
                )
            ).one()
            expected = (event["tenantid"], event["data"]["lead_id"], _utc(event["time"]))
            if (row.tenant_id, row.lead_id, row.created_at) != expected:
                wrong.append(("row", event["id"]))
            stored = _comparable(orjson.loads(row.payload) if isinstance(row.payload, str) else row.payload)["data"]
            if stored != _comparable(_without_times(event["data"])) | _times_of(stored, event["data"]):
                wrong.append(("payload", event["id"]))
            params = {"id": UUID(event["id"]), **_fact_params(event)}
            if (await conn.execute(text(FACTS[event["type"]]), params)).scalar_one() != 1:
                wrong.append(("fact", event["id"]))
    assert not wrong, wrong[:10]


def _fact_params(event: dict[str, Any]) -> dict[str, Any]:
    """The value each type's fact row must hold (money rounded to NUMERIC(14,6)'s 6 decimals)."""
    data = event["data"]
    if event["type"] == "autopilot.action_executed":
        return {"cost": Decimal(repr(float(data["cost_usd"]))).quantize(Decimal("0.000001"))}
    if event["type"] == "message.sent":
        return {"sent": _utc(data["sent_at"])}
    return {"step": data["step_index"]} if event["type"] == "sequence.step_executed" else {}


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _without_times(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("queued_at", "sent_at")}


def _times_of(stored: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The stored times where they are the sent instants (the model writes them in its own form)."""
    return {k: stored[k] for k in ("queued_at", "sent_at") if k in stored and _utc(stored[k]) == _utc(sent[k])}


def _comparable(value: Any) -> Any:
    """JSON as jsonb gives it back, numbers as floats: jsonb keeps 1e300 as the integer 10...0, whose exact
    value differs from the float it came from; both sides round to the same float."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value
