"""A corpus of bad records, interleaved with valid events: every bad record ends in `dead_letters` with
its reason, every valid event is processed, and the worker never restarts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
import pytest
from sqlalchemy import text

from salesflow.bootstrap import event_producer
from salesflow.db.engine import create_engine
from salesflow.domain.events import EventType
from salesflow.producer.envelope import encode
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import wait_for

pytestmark = pytest.mark.integration

MAX_EVENT_BYTES = 16 * 1024


def corpus() -> list[tuple[str, bytes | None, tuple[tuple[str, bytes], ...], str]]:
    """(name, value, headers, expected reason): one per class of bad input."""
    lead = event_dict(EventType.LEAD_CREATED)
    action = event_dict(EventType.AUTOPILOT_ACTION_EXECUTED)
    message = event_dict(EventType.MESSAGE_SENT)
    step = event_dict(EventType.SEQUENCE_STEP_EXECUTED)
    binary_headers = tuple((f"ce_{k}", str(v).encode()) for k, v in message.items() if k not in ("data",))
    return [
        ("not json", b"<xml>lead</xml>", (), "not_json"),
        ("invalid utf-8", b'{"id": "\xff\xfe"}', (), "invalid_utf8"),
        ("json, not an object", b'"just a string"', (), "not_an_object"),
        ("missing id", encode({k: v for k, v in lead.items() if k != "id"}), (), "missing_field"),
        ("malformed id", encode({**lead, "id": "lead-42"}), (), "invalid_field"),
        ("unknown type", encode({**lead, "type": "lead.teleported"}), (), "unknown_type"),
        ("missing tenantid", encode({k: v for k, v in lead.items() if k != "tenantid"}), (), "missing_field"),
        ("wrong specversion", encode({**lead, "specversion": "0.3"}), (), "unsupported_specversion"),
        ("unknown schema version", encode({**lead, "dataschema": "v7"}), (), "unsupported_schema"),
        (
            "payload field of the wrong type",
            encode({**lead, "data": {**lead["data"], "autopilot": [1]}}),
            (),
            "invalid_field",
        ),
        ("negative cost", encode({**action, "data": {**action["data"], "cost_usd": -1.5}}), (), "invalid_field"),
        (
            "over the size limit",
            encode({**lead, "data": {**lead["data"], "note": "x" * MAX_EVENT_BYTES}}),
            (),
            "too_large",
        ),
        ("empty value", b"", (), "empty"),
        ("tombstone", None, (), "empty"),
        (
            "binary mode without specversion",
            orjson.dumps(message["data"]),
            tuple(h for h in binary_headers if h[0] != "ce_specversion"),
            "invalid_headers",
        ),
        (
            "binary mode with non-UTF-8 header",
            orjson.dumps(message["data"]),
            (*binary_headers, ("ce_tenantid", b"\xc3\x28")),
            "invalid_headers",
        ),
        # Issue 11 defect 5: a repeated key was resolved silently (the last one won), so the id or the
        # tenant depended on the reader. Each is now dead-lettered as duplicate_key.
        ("duplicate id", _splice(lead, b'"id":"00000000-0000-4000-8000-0000000000d5",'), (), "duplicate_key"),
        ("duplicate tenantid", _splice(lead, b'"tenantid":"someone-else",'), (), "duplicate_key"),
        (
            "duplicate key in data, escaped",
            _splice(lead, b'"lead\\u005fid":"lead-x",', b'"data":{'),
            (),
            "duplicate_key",
        ),
        (
            "binary mode, ce_tenantid twice",
            orjson.dumps(message["data"]),
            (*binary_headers, ("ce_tenantid", b"someone-else")),
            "duplicate_key",
        ),
        # Issue 11 defect 6: the content type decides the mode. A payload labelled as a structured
        # CloudEvent is read as an envelope, whatever ce_* headers it carries (its valid counterpart,
        # a structured event with stray ce_* headers, is processed: tests/integration/test_content_mode.py).
        (
            "structured content type on a bare payload",
            orjson.dumps(message["data"]),
            (*binary_headers, ("content-type", b"application/cloudevents+json")),
            "unsupported_specversion",
        ),
        # Issue 11, defect 1: valid JSON that Postgres cannot store; the contract's limits refuse it now.
        ("NUL in lead_id", encode({**lead, "data": {**lead["data"], "lead_id": "lead\x00-1"}}), (), "invalid_field"),
        ("NUL in an extra field", encode({**lead, "data": {**lead["data"], "note": "a\x00b"}}), (), "invalid_field"),
        ("NUL in an extra field's name", encode({**lead, "data": {**lead["data"], "n\x00": 1}}), (), "invalid_field"),
        ("cost_usd 1e9", encode({**action, "data": {**action["data"], "cost_usd": 1e9}}), (), "invalid_field"),
        ("cost_usd 1e40", encode({**action, "data": {**action["data"], "cost_usd": 1e40}}), (), "invalid_field"),
        ("tokens 2**31", encode({**action, "data": {**action["data"], "tokens": 2**31}}), (), "invalid_field"),
        ("step_index 2**31", encode({**step, "data": {**step["data"], "step_index": 2**31}}), (), "invalid_field"),
        ("time past year 9999 in UTC", encode({**lead, "time": "9999-12-31T23:59:59-01:00"}), (), "invalid_field"),
        # Issue 11, defect 4: stored as -infinity, returned without a zone.
        ("time in year 1", encode({**lead, "time": "0001-01-01T00:00:00Z"}), (), "invalid_field"),
        # Deeper than pydantic serialises (it stops near 255 levels): the projection's pending row failed.
        (
            "extra field nested 300 deep",
            encode({**lead, "data": {**lead["data"], "deep": "DEEP"}}).replace(b'"DEEP"', b"[" * 300 + b"]" * 300),
            (),
            "invalid_field",
        ),
    ]


def _splice(event: dict[str, Any], member: bytes, at: bytes = b"{") -> bytes:
    """The event's JSON with ``member`` (raw JSON, ending in a comma) inserted right after ``at``."""
    raw = encode(event)
    where = raw.index(at) + len(at)
    return raw[:where] + member + raw[where:]


async def test_poison_records_are_dead_lettered_and_the_stream_goes_on(
    settings_factory: SettingsFactory, service_factory: Any
) -> None:
    from salesflow.kafka_admin import create_topics

    settings = settings_factory(max_event_bytes=MAX_EVENT_BYTES)
    await create_topics(settings)
    worker = service_factory("worker", settings)
    service_factory("projection", settings)
    bad = corpus()
    assert len({reason for *_, reason in bad}) >= 10 and len(bad) >= 12
    valid: list[dict[str, Any]] = []
    async with event_producer(settings) as producer:
        for round_ in range(3):  # valid events before, between and after the bad ones
            for _, value, headers, _ in bad:
                event = event_dict(EventType.LEAD_CREATED, f"tenant-{round_}", lead_id=f"lead-{len(valid)}")
                valid.append(event)
                await (await producer.send_event(event))
                topic = settings.topics.source(EventType.LEAD_CREATED)
                await (await producer.send_raw(topic, value, key=b"acme:poison", headers=headers))
    engine = create_engine(settings.database_url)
    try:
        ids = [UUID(e["id"]) for e in valid]

        async def all_processed() -> bool:
            async with engine.connect() as conn:
                n: int = (
                    await conn.execute(
                        text("SELECT count(*) FROM events WHERE id = ANY(:ids) AND status = 'processed'"), {"ids": ids}
                    )
                ).scalar_one()
            return int(n) == len(ids)

        async def dead_letters() -> Sequence[Any]:
            async with engine.connect() as conn:
                found = await conn.execute(
                    text('SELECT "offset", reason, raw FROM dead_letters WHERE topic = :t ORDER BY "offset"'),
                    {"t": settings.topics.source(EventType.LEAD_CREATED)},
                )
                return list(found.all())

        await wait_for(all_processed, timeout=90, what="every valid event to be processed")
        found = await wait_for(lambda: _at_least(dead_letters, 3 * len(bad)), timeout=60, what="the dead letters")
    finally:
        await engine.dispose()
    expected = [(value, reason) for _ in range(3) for _, value, _, reason in bad]
    assert [(r.raw, r.reason) for r in found] == expected
    assert worker.running, "the worker must not die on bad input"
    log = worker.log_path.read_text(errors="replace")
    assert "Crashed" not in log
    assert log.count("[^Worker]: Ready") == 1, "one life only: the worker never restarted"


async def _at_least(query: Any, count: int) -> Any:
    rows = await query()
    return rows if len(rows) >= count else None
