"""The projection's row building (pure): records into rows, rejections, ownership within a batch, and
the fact kinds defined once (the rows, the COPY columns and the tables all derive from the models)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
import orjson
import pytest

from salesflow.db.schema import FACT_TABLES, metadata
from salesflow.domain import records as r
from salesflow.domain.events import ActionOutcome, Channel, EventType
from salesflow.domain.outcome import Outcome, SourcePosition
from salesflow.domain.outputs import FACT_KINDS, AIActionFact, FunnelFact, MessageFact
from salesflow.domain.records import RecordIn
from salesflow.producer.envelope import encode
from salesflow.projection.poll_groups import Batch
from salesflow.projection.rejects import REJECTED_COLUMNS, rejected_row, storable_text
from salesflow.projection.rows import (
    FACT_COLUMNS,
    FACT_TIMES,
    DeadLetterRow,
    OutcomeRows,
    PendingRow,
    Rejection,
    RejectReason,
    claimed_tenant,
    dead_letter_row,
    outcome_rows,
    pending_row,
)
from salesflow.testing.factories import T0, event_dict

EVENT_ID = uuid4()


def record(value: bytes | None, topic: str = "outcomes", offset: int = 0, **kw: Any) -> RecordIn:
    return RecordIn(topic, 0, offset, kw.pop("timestamp_ms", 1000 + offset), kw.pop("key", b"k"), value, **kw)


def outcome(event_id: UUID = EVENT_ID, tenant: str = "acme", processed: datetime = T0, **kw: Any) -> Outcome:
    base: dict[str, Any] = {"event_id": event_id, "tenant_id": tenant, "lead_id": "lead-1", "occurred_at": T0}
    facts = (
        FunnelFact(**base, stage="created"),
        AIActionFact(
            **base, action_id="a", action_type="send", outcome=ActionOutcome.SUCCEEDED, cost_usd=0.5, value_usd=2.0
        ),
        MessageFact(
            **base,
            message_id="m",
            channel=Channel.EMAIL,
            queued_at=T0,
            sent_at=T0 + timedelta(seconds=3),
            latency_seconds=3,
        ),
    )
    return Outcome(
        event_id=event_id,
        type="message.sent",
        tenant_id=tenant,
        lead_id="lead-1",
        status="processed",
        occurred_at=T0,
        processed_at=processed,
        attempts=1,
        position=SourcePosition(topic="salesflow.messages.v1", partition=2, offset=7),
        facts=kw.pop("facts", facts),
        **kw,
    )


def test_every_fact_kind_has_its_table_and_the_columns_are_the_models_fields() -> None:
    assert set(FACT_TABLES) == set(FACT_KINDS) == set(FACT_COLUMNS)
    for kind, model in FACT_KINDS.items():
        table = FACT_TABLES[kind]
        assert table.name == model.table and table is metadata.tables[model.table]
        assert {c.name for c in table.columns} == {*FACT_COLUMNS[kind], "updated_at"}, kind
    assert FACT_TIMES["message"] == ("occurred_at", "queued_at", "sent_at")
    assert FACT_TIMES["funnel"] == ("occurred_at",)


def test_an_outcome_becomes_its_event_row_and_its_facts() -> None:
    made = outcome(replay=True, error_message=None)
    parsed = outcome_rows(record(msgspec.json.encode(made)))
    assert isinstance(parsed, OutcomeRows)
    assert (parsed.event_id, parsed.tenant_id, parsed.processed_at) == (EVENT_ID, "acme", T0)
    assert parsed.event == {
        "id": EVENT_ID,
        "type": "message.sent",
        "tenant_id": "acme",
        "lead_id": "lead-1",
        "status": "processed",
        "created_at": T0,
        "processed_at": T0,
        "error_message": None,
        "attempts": 1,
        "replay_count": 1,
        "source_topic": "salesflow.messages.v1",
        "source_partition": 2,
        "source_offset": 7,
    }
    assert set(parsed.facts) == {"funnel", "ai_action", "message"}
    for kind, rows in parsed.facts.items():
        (row,) = rows
        assert tuple(row) == FACT_COLUMNS[kind]
        model = next(f for f in made.facts if f.kind == kind)
        assert row == {name: getattr(model, name) for name in FACT_COLUMNS[kind]}, kind


BASE = orjson.loads(msgspec.json.encode(outcome()))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"{not json", "JSONDecodeError"),
        (b"[1, 2]", "TypeError"),
        (orjson.dumps({k: v for k, v in BASE.items() if k != "position"}), "position"),
        (orjson.dumps({**BASE, "event_id": "not-a-uuid"}), "ValueError"),
        (orjson.dumps({**BASE, "tenant_id": 7}), "tenant_id"),
        (orjson.dumps({**BASE, "processed_at": "2026-11-24T12:00:00"}), "no time zone"),
        (orjson.dumps({**BASE, "facts": [{**BASE["facts"][0], "kind": "horoscope"}]}), "unknown kind"),
        (orjson.dumps({**BASE, "facts": [{**BASE["facts"][0], "tenant_id": "globex"}]}), "another event or tenant"),
        (orjson.dumps({**BASE, "facts": [{**BASE["facts"][0], "event_id": str(uuid4())}]}), "another event"),
    ],
)
def test_an_outcome_that_is_not_one_is_rejected_not_raised(value: bytes, says: str) -> None:
    parsed = outcome_rows(record(value))
    assert isinstance(parsed, Rejection)
    assert parsed.reason is RejectReason.MALFORMED_OUTCOME and says in parsed.error
    assert parsed.record.value == value


def test_a_facts_unknown_keys_are_dropped_and_missing_ones_are_null() -> None:
    fact = {**BASE["facts"][0], "injected; DROP TABLE events": 1}
    fact.pop("stage")
    parsed = outcome_rows(record(orjson.dumps({**BASE, "facts": [fact]})))
    assert isinstance(parsed, OutcomeRows)
    assert parsed.facts["funnel"][0] == {**dict.fromkeys(FACT_COLUMNS["funnel"]), **parsed.facts["funnel"][0]}
    assert parsed.facts["funnel"][0]["stage"] is None  # NOT NULL in Postgres: rejected there, as a value


def test_a_source_record_is_a_pending_row_and_a_broken_one_none() -> None:
    event = event_dict(EventType.LEAD_CREATED, "acme")
    parsed = pending_row(record(encode(event), topic="salesflow.leads.v1", offset=4), max_bytes=10_000)
    assert isinstance(parsed, PendingRow)
    assert (str(parsed.event_id), parsed.tenant_id) == (event["id"], "acme")
    assert parsed.row["status"] == "pending" and parsed.row["source_offset"] == 4
    assert orjson.loads(parsed.row["payload"])["data"]["lead_id"] == "lead-1"
    assert orjson.loads(parsed.row["payload"]) == event  # the event as it was sent
    assert parsed.row["created_at"] == datetime.fromisoformat(event["time"])
    assert pending_row(record(b"not json", topic="salesflow.leads.v1"), max_bytes=10_000) is None
    assert pending_row(record(encode(event)), max_bytes=100) is None  # over the size limit


def test_a_binary_mode_record_is_a_pending_row_with_its_envelope_as_payload() -> None:
    event = event_dict(EventType.MESSAGE_SENT, "acme")
    headers = tuple((f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data")
    parsed = pending_row(record(orjson.dumps(event["data"]), headers=headers), max_bytes=10_000)
    assert isinstance(parsed, PendingRow) and parsed.tenant_id == "acme"
    assert orjson.loads(parsed.row["payload"]) == {
        **{k: str(v) for k, v in event.items() if k != "data"},
        "data": event["data"],
    }


@pytest.mark.parametrize(
    "change",
    [
        {"type": "lead.merged"},
        {"specversion": "0.3"},
        {"id": "not-a-uuid"},
        {"id": None},
        {"tenantid": None},
        {"tenantid": ""},
        {"time": "2026-11-24T12:00:00"},
        {"time": "yesterday"},
        {"data": ["lead_id"]},
        {"data": {"lead_id": 7}},
    ],
    ids=repr,
)
def test_a_source_record_that_fails_the_cheap_read_is_no_pending_row(change: dict[str, Any]) -> None:
    event = {**event_dict(EventType.LEAD_CREATED, "acme"), **change}
    assert pending_row(record(orjson.dumps(event)), max_bytes=10_000) is None


def test_a_dead_letter_row_names_the_original_position_and_the_claimed_tenant() -> None:
    original = orjson.dumps({"id": str(EVENT_ID), "tenantid": "acme", "specversion": "0.3"})
    headers = (
        (r.DLQ_ORIGINAL_TOPIC, b"salesflow.leads.v1"),
        (r.DLQ_ORIGINAL_PARTITION, b"3"),
        (r.DLQ_ORIGINAL_OFFSET, b"99"),
        (r.DLQ_EVENT_ID, str(EVENT_ID).encode()),
        (r.DLQ_REASON, b"unsupported_specversion"),
    )
    parsed = dead_letter_row(record(original, topic="salesflow.deadletter.v1", headers=headers))
    assert isinstance(parsed, DeadLetterRow)
    assert (parsed.event_id, parsed.tenant_id) == (EVENT_ID, "acme")
    assert (parsed.row["topic"], parsed.row["partition"], parsed.row["offset"]) == ("salesflow.leads.v1", 3, 99)
    broken = dead_letter_row(record(original, headers=((r.DLQ_ORIGINAL_OFFSET, b"x1"),)))
    assert isinstance(broken, Rejection) and broken.reason is RejectReason.MALFORMED_DEAD_LETTER


def test_the_claimed_tenant_of_structured_binary_and_unreadable_records() -> None:
    assert claimed_tenant(record(b'{"tenantid": "acme"}')) == "acme"
    assert claimed_tenant(record(b'{"x": 1}', headers=(("ce_tenantid", b"globex"),))) is None  # structured wins
    assert claimed_tenant(record(b"payload", headers=(("ce_tenantid", b"globex"),))) == "globex"
    assert claimed_tenant(record(b'{"tenantid": 5}')) is None
    assert claimed_tenant(record(b'{"tenantid": ""}')) is None
    assert claimed_tenant(record(None)) is None


def items(*outcomes: Outcome) -> list[OutcomeRows]:
    parsed = [outcome_rows(record(msgspec.json.encode(o), offset=n)) for n, o in enumerate(outcomes)]
    rows = [p for p in parsed if isinstance(p, OutcomeRows)]
    assert len(rows) == len(parsed)
    return rows


def test_a_batch_keeps_the_newest_outcome_of_an_event() -> None:
    older, newer = outcome(processed=T0), outcome(processed=T0 + timedelta(seconds=1))
    for order in ((older, newer), (newer, older)):
        batch = Batch.of(items(*order))
        assert batch.outcomes[EVENT_ID].processed_at == T0 + timedelta(seconds=1)
        assert not batch.rejected


def test_within_a_batch_the_first_tenant_owns_the_id() -> None:
    a, b = outcome(tenant="acme"), outcome(tenant="globex", processed=T0 + timedelta(seconds=5))
    batch = Batch.of(items(a, b))
    assert batch.outcomes[EVENT_ID].tenant_id == "acme"
    (conflict,) = batch.rejected
    assert (conflict.reason, conflict.tenant_id, conflict.event_id) == (RejectReason.ID_CONFLICT, "globex", EVENT_ID)
    # The record's timestamp decides, not the order the poll handed the partitions out.
    first_b, later_a = items(b, a)
    later_a = OutcomeRows(**{**later_a.__dict__, "record": record(later_a.record.value, timestamp_ms=10**12)})
    assert Batch.of([later_a, first_b]).outcomes[EVENT_ID].tenant_id == "globex"


def test_a_dead_letter_without_a_tenant_neither_claims_nor_conflicts() -> None:
    unknown = DeadLetterRow(record(b"?"), EVENT_ID, None, {})
    batch = Batch.of([unknown, *items(outcome(tenant="acme"))])
    assert batch.dead_letters == [unknown] and EVENT_ID in batch.outcomes and not batch.rejected
    later = DeadLetterRow(record(b"?", timestamp_ms=10**12), EVENT_ID, None, {})
    batch = Batch.of([*items(outcome(tenant="acme")), later])
    assert batch.dead_letters == [later] and not batch.rejected
    other = DeadLetterRow(record(b"?", timestamp_ms=10**12), EVENT_ID, "globex", {})
    batch = Batch.of([*items(outcome(tenant="acme")), other])
    assert not batch.dead_letters and batch.rejected[0].reason is RejectReason.ID_CONFLICT


def test_a_rejected_row_can_always_be_stored() -> None:
    rec = record(b"raw\x00bytes", key=b"k\x00", headers=(("a\x00b", b"\x00\xff"),), timestamp_ms=-1)
    rejection = Rejection(rec, RejectReason.INVALID_VALUE, "bad \x00 value", None, "t\x00")
    row = dict(zip(REJECTED_COLUMNS, rejected_row(rejection), strict=True))
    assert row["raw"] == b"raw\x00bytes" and row["record_key"] == b"k\x00"  # bytea keeps the bytes
    assert "\x00" not in row["error"] and "\x00" not in row["tenant_id"] and "\x00" not in row["headers"]
    assert orjson.loads(row["headers"]) == [["a\\u0000b", base64.b64encode(b"\x00\xff").decode()]]
    assert row["record_timestamp"] is None and row["reason"] == "invalid_value"
    assert storable_text("x" * 5000, 2000) == "x" * 2000
    assert storable_text("\ud800") == "?"
    stamped = rejected_row(Rejection(record(b"", timestamp_ms=0), RejectReason.ID_CONFLICT, "e"))
    assert stamped[REJECTED_COLUMNS.index("record_timestamp")] == datetime(1970, 1, 1, tzinfo=UTC)
