from __future__ import annotations

from typing import Any

import orjson
import pytest

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import CloudEvent, EventType, LeadCreatedV1, MessageSentV1
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent
from tests.factories import ENVELOPE_REQUIRED, REQUIRED, make_event

MAX = 64 * 1024


def decode(value: Any, headers: tuple[tuple[str, bytes], ...] = ()) -> CloudEvent[Any]:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return decode_event(raw, headers, max_bytes=MAX)


def reason_of(value: Any, headers: tuple[tuple[str, bytes], ...] = ()) -> Reason:
    with pytest.raises(InvalidEvent) as caught:
        decode(value, headers)
    return caught.value.reason


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_type_decodes_into_its_payload_model(event_type: EventType) -> None:
    event = decode(make_event(event_type))
    assert event.type is event_type
    assert event.tenant_id == "acme"
    assert event.key == "acme:lead-1"


@pytest.mark.parametrize(("event_type", "field"), [(t, f) for t, fs in REQUIRED.items() for f in fs])
def test_each_required_payload_field_is_required(event_type: EventType, field: str) -> None:
    event = make_event(event_type)
    del event["data"][field]
    assert reason_of(event) is Reason.MISSING_FIELD


@pytest.mark.parametrize("field", ENVELOPE_REQUIRED)
def test_each_required_envelope_attribute_is_required(field: str) -> None:
    event = make_event(EventType.LEAD_CREATED)
    del event[field]
    assert reason_of(event) is Reason.MISSING_FIELD


@pytest.mark.parametrize(
    ("event_type", "field", "bad"),
    [
        (EventType.LEAD_CREATED, "lead_id", ["not", "a", "string"]),
        (EventType.LEAD_CREATED, "source", "carrier_pigeon"),
        (EventType.LEAD_CREATED, "autopilot", "maybe"),
        (EventType.AUTOPILOT_ACTION_EXECUTED, "cost_usd", "cheap"),
        (EventType.AUTOPILOT_ACTION_EXECUTED, "cost_usd", -0.01),
        (EventType.AUTOPILOT_ACTION_EXECUTED, "outcome", "won"),
        (EventType.MESSAGE_SENT, "channel", "pager"),
        (EventType.MESSAGE_SENT, "sent_at", "yesterday"),
        (EventType.MESSAGE_SENT, "queued_at", "2026-11-24T12:00:00"),  # no time zone
        (EventType.SEQUENCE_STEP_EXECUTED, "step_index", -1),
        (EventType.SEQUENCE_STEP_EXECUTED, "step_index", "two"),
        (EventType.SEQUENCE_STEP_EXECUTED, "status", "done"),
    ],
)
def test_ill_typed_or_out_of_range_fields_are_invalid(event_type: EventType, field: str, bad: Any) -> None:
    event = make_event(event_type)
    event["data"][field] = bad
    assert reason_of(event) is Reason.INVALID_FIELD


def test_unknown_type_and_wrong_specversion_and_bad_id() -> None:
    assert reason_of({**make_event(EventType.LEAD_CREATED), "type": "lead.deleted"}) is Reason.UNKNOWN_TYPE
    assert reason_of({**make_event(EventType.LEAD_CREATED), "specversion": "0.3"}) is Reason.UNSUPPORTED_SPECVERSION
    assert reason_of({**make_event(EventType.LEAD_CREATED), "id": "not-a-uuid"}) is Reason.INVALID_FIELD
    assert reason_of({**make_event(EventType.LEAD_CREATED), "dataschema": "v9"}) is Reason.UNSUPPORTED_SCHEMA


def test_bytes_that_are_not_an_event() -> None:
    assert reason_of(b"") is Reason.EMPTY
    assert reason_of(b"{not json") is Reason.NOT_JSON
    assert reason_of(b"\xff\xfe\x00garbage") is Reason.INVALID_UTF8
    assert reason_of(b"[1,2]") is Reason.NOT_AN_OBJECT
    assert reason_of(b"x" * (MAX + 1)) is Reason.TOO_LARGE
    with pytest.raises(InvalidEvent) as caught:
        decode_event(None, (), max_bytes=MAX)
    assert caught.value.reason is Reason.EMPTY


def test_unknown_extra_fields_are_accepted_and_kept() -> None:
    event = make_event(EventType.LEAD_CREATED, score=42)
    event["traceparent"] = "00-abc"
    decoded = decode(event)
    assert isinstance(decoded.data, LeadCreatedV1)
    assert decoded.data.model_extra == {"score": 42}


def test_invalid_event_keeps_the_event_id_when_it_can() -> None:
    event = make_event(EventType.LEAD_CREATED, source="nowhere")
    with pytest.raises(InvalidEvent) as caught:
        decode(event)
    assert caught.value.event_id == event["id"]
    assert "data.source" in caught.value.detail


def test_binary_mode_headers_carry_the_attributes() -> None:
    event = make_event(EventType.MESSAGE_SENT)
    headers = (
        *((f"ce_{k}", str(v).encode()) for k, v in event.items() if k not in ("data", "datacontenttype")),
        ("content-type", b"application/json"),
    )
    decoded = decode(orjson.dumps(event["data"]), headers)
    assert isinstance(decoded.data, MessageSentV1)
    assert str(decoded.id) == event["id"]


def test_binary_mode_with_broken_headers_is_invalid() -> None:
    data = orjson.dumps(make_event(EventType.MESSAGE_SENT)["data"])
    assert reason_of(data, (("ce_id", b"x"), ("ce_type", b"message.sent"))) is Reason.INVALID_HEADERS
    assert reason_of(data, (("ce_specversion", b"\xff\xfe"),)) is Reason.INVALID_HEADERS
