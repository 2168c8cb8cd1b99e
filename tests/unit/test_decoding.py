from __future__ import annotations

from typing import Any

import orjson
import pytest

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import CloudEvent, EventType, LeadCreatedV1, MessageSentV1
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent
from salesflow.testing.factories import event_dict

REQUIRED: dict[EventType, list[str]] = {
    EventType.LEAD_CREATED: ["lead_id", "source"],
    EventType.AUTOPILOT_ACTION_EXECUTED: ["lead_id", "action_id", "action_type", "cost_usd", "outcome"],
    EventType.MESSAGE_SENT: ["lead_id", "message_id", "channel", "queued_at", "sent_at"],
    EventType.SEQUENCE_STEP_EXECUTED: ["lead_id", "sequence_id", "step_index", "action", "status"],
}

ENVELOPE_REQUIRED = ["id", "source", "time", "tenantid", "data"]


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
    event = decode(event_dict(event_type))
    assert event.type is event_type
    assert event.tenant_id == "acme"
    assert event.key == "acme:lead-1"


@pytest.mark.parametrize(("event_type", "field"), [(t, f) for t, fs in REQUIRED.items() for f in fs])
def test_each_required_payload_field_is_required(event_type: EventType, field: str) -> None:
    event = event_dict(event_type)
    del event["data"][field]
    assert reason_of(event) is Reason.MISSING_FIELD


@pytest.mark.parametrize("field", ENVELOPE_REQUIRED)
def test_each_required_envelope_attribute_is_required(field: str) -> None:
    event = event_dict(EventType.LEAD_CREATED)
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
    event = event_dict(event_type)
    event["data"][field] = bad
    assert reason_of(event) is Reason.INVALID_FIELD


def test_unknown_type_and_wrong_specversion_and_bad_id() -> None:
    assert reason_of({**event_dict(EventType.LEAD_CREATED), "type": "lead.deleted"}) is Reason.UNKNOWN_TYPE
    assert reason_of({**event_dict(EventType.LEAD_CREATED), "specversion": "0.3"}) is Reason.UNSUPPORTED_SPECVERSION
    assert reason_of({**event_dict(EventType.LEAD_CREATED), "id": "not-a-uuid"}) is Reason.INVALID_FIELD
    assert reason_of({**event_dict(EventType.LEAD_CREATED), "dataschema": "v9"}) is Reason.UNSUPPORTED_SCHEMA


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
    event = event_dict(EventType.LEAD_CREATED, score=42)
    event["traceparent"] = "00-abc"
    decoded = decode(event)
    assert isinstance(decoded.data, LeadCreatedV1)
    assert decoded.data.extra == {"score": 42}


def test_invalid_event_keeps_the_event_id_when_it_can() -> None:
    event = event_dict(EventType.LEAD_CREATED, source="nowhere")
    with pytest.raises(InvalidEvent) as caught:
        decode(event)
    assert caught.value.event_id == event["id"]
    assert "data.source" in caught.value.detail


def test_binary_mode_headers_carry_the_attributes() -> None:
    event = event_dict(EventType.MESSAGE_SENT)
    headers = (
        *((f"ce_{k}", str(v).encode()) for k, v in event.items() if k not in ("data", "datacontenttype")),
        ("content-type", b"application/json"),
    )
    decoded = decode(orjson.dumps(event["data"]), headers)
    assert isinstance(decoded.data, MessageSentV1)
    assert str(decoded.id) == event["id"]


def test_binary_mode_with_broken_headers_is_invalid() -> None:
    data = orjson.dumps(event_dict(EventType.MESSAGE_SENT)["data"])
    assert reason_of(data, (("ce_id", b"x"), ("ce_type", b"message.sent"))) is Reason.INVALID_HEADERS
    assert reason_of(data, (("ce_specversion", b"\xff\xfe"),)) is Reason.INVALID_HEADERS


# Defect 5: the same key twice in one object is rejected, never resolved silently (last one wins in
# orjson, msgspec and pydantic-core alike, so the id or tenant would depend on the reader).

UUID_B = "00000000-0000-4000-8000-00000000000b"


def _with_prefix(event: dict[str, Any], prefix: bytes, at: bytes = b"{") -> bytes:
    """The event's JSON with ``prefix`` (raw JSON members and a comma) inserted after ``at``."""
    raw = orjson.dumps(event)
    where = raw.index(at) + len(at)
    return raw[:where] + prefix + raw[where:]


def _duplicate_inputs() -> list[tuple[str, bytes, str, str]]:
    """(name, raw bytes, the repeated key, where it is said to be)."""
    lead = event_dict(EventType.LEAD_CREATED)
    deep = {**lead, "meta": {"a": {"b": [{"x": 1}, {"y": 2}]}}}
    return [
        ("id twice", _with_prefix(lead, f'"id":"{UUID_B}",'.encode()), "id", "the envelope"),
        ("tenantid twice", _with_prefix(lead, b'"tenantid":"other-tenant",'), "tenantid", "the envelope"),
        ("type twice", _with_prefix(lead, b'"type":"message.sent",'), "type", "the envelope"),
        ("same value twice", _with_prefix(lead, b'"tenantid":"acme",'), "tenantid", "the envelope"),
        ("lead_id twice in data", _with_prefix(lead, b'"lead_id":"lead-2",', b'"data":{'), "lead_id", "data"),
        ("escaped id", _with_prefix(lead, f'"i\\u0064":"{UUID_B}",'.encode()), "id", "the envelope"),
        ("escaped key in data", _with_prefix(lead, b'"lead\\u005fid":"x",', b'"data":{'), "lead_id", "data"),
        ("after whitespace", _with_prefix(lead, b' "tenantid" : "other" , '), "tenantid", "the envelope"),
        ("nested in an extra", _with_prefix(deep, b'"y":3,', b"},{"), "y", "meta.a.b[1]"),
    ]


@pytest.mark.parametrize(
    ("name", "raw", "key", "where"), _duplicate_inputs(), ids=lambda v: v[:30] if isinstance(v, str) else "raw"
)
def test_duplicate_keys_are_rejected_naming_the_key_and_where(name: str, raw: bytes, key: str, where: str) -> None:
    assert orjson.loads(raw)  # still JSON: only the repeated key is wrong
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert caught.value.reason is Reason.DUPLICATE_KEY, name
    assert f"key {key!r} appears twice in {where} " in caught.value.detail
    assert caught.value.event_id is None  # which id would it be?


def test_duplicate_key_deeper_than_jiter_reads_is_found() -> None:
    nested = b"[" * 300 + b'{"k":1,"k":2}' + b"]" * 300
    raw = _with_prefix(event_dict(EventType.LEAD_CREATED), b'"deep":' + nested + b",")
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert caught.value.reason is Reason.DUPLICATE_KEY
    assert "key 'k' appears twice in deep[0][0]" in caught.value.detail
    assert len(caught.value.detail) < 200  # the path is shortened, not 300 levels long


def test_a_huge_repeated_key_gives_a_short_detail() -> None:
    big = "k" * 5000
    raw = _with_prefix(event_dict(EventType.LEAD_CREATED), f'"{big}":1,"{big}":2,'.encode())
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert caught.value.reason is Reason.DUPLICATE_KEY
    assert len(caught.value.detail) < 300


@pytest.mark.parametrize(
    "members",
    [
        b'"ID":"upper case is another key",',  # keys are case-sensitive
        b'"i\\u0044":"escaped upper case",',
        b'"meta":{"id":"x","data":{"id":"y"}},',  # the same names in other objects
        b'"list":[{"a":1},{"a":2}],',  # the same key in sibling objects
        b'"note":"a \\"quoted\\": colon, and \\\\ backslash",',
        b'"colons":"\\":\\":{\\"a\\":1}",',
        b'"url":"https:\\/\\/example.com\\/a:b",',  # escaped slashes, as PHP writes them
        b'"e":"\xc3\xa9","e\xcc\x81":"composed and decomposed are two keys",',
    ],
)
def test_lookalike_keys_that_are_distinct_are_accepted(members: bytes) -> None:
    event = decode(_with_prefix(event_dict(EventType.LEAD_CREATED), members))
    assert event.extensions


def test_binary_mode_rejects_a_repeated_key_in_the_data_and_a_repeated_attribute_header() -> None:
    event = event_dict(EventType.MESSAGE_SENT)
    headers = tuple((f"ce_{k}", str(v).encode()) for k, v in event.items() if k not in ("data", "datacontenttype"))
    data = orjson.dumps(event["data"])
    with pytest.raises(InvalidEvent) as caught:
        decode(b'{"lead_id":"lead-9",' + data[1:], headers)
    assert caught.value.reason is Reason.DUPLICATE_KEY
    assert "key 'lead_id' appears twice in data " in caught.value.detail
    with pytest.raises(InvalidEvent) as caught:
        decode(data, (*headers, ("ce_tenantid", b"other-tenant")))
    assert caught.value.reason is Reason.DUPLICATE_KEY
    assert "ce_tenantid" in caught.value.detail


# Defect 6: the content type decides the mode (CloudEvents Kafka protocol binding, section 3).


def _stray_headers(event: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    # ce_* headers that disagree with the value: a structured record must ignore them.
    return (
        ("ce_specversion", b"1.0"),
        ("ce_id", UUID_B.encode()),
        ("ce_type", b"message.sent"),
        ("ce_tenantid", b"someone-else"),
        ("ce_source", b"\xff\xfe"),  # not even UTF-8
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("content-type", b"application/cloudevents+json"),
        ("content-type", b"application/cloudevents+json; charset=utf-8"),
        ("content-type", b"Application/CloudEvents+JSON; charset=UTF-8"),
        ("Content-Type", b"  application/cloudevents+json"),
    ],
)
def test_a_cloudevents_content_type_is_structured_mode_even_with_stray_ce_headers(name: str, value: bytes) -> None:
    event = event_dict(EventType.LEAD_CREATED)
    decoded = decode(event, (*_stray_headers(event), (name, value)))
    assert str(decoded.id) == event["id"]
    assert decoded.tenant_id == "acme"
    assert decoded.type is EventType.LEAD_CREATED


def test_a_cloudevents_content_type_reads_the_value_as_the_envelope() -> None:
    # A payload mislabelled as structured is not rescued by its ce_* headers.
    event = event_dict(EventType.LEAD_CREATED)
    headers = (*_stray_headers(event)[:4], ("content-type", b"application/cloudevents+json"))
    assert reason_of(event["data"], headers) is Reason.UNSUPPORTED_SPECVERSION


@pytest.mark.parametrize("content_type", [b"application/json", b"application/json; charset=utf-8", b"\xff", None])
def test_another_content_type_with_ce_specversion_is_binary_mode(content_type: bytes | None) -> None:
    event = event_dict(EventType.MESSAGE_SENT)
    headers = tuple((f"ce_{k}", str(v).encode()) for k, v in event.items() if k not in ("data", "datacontenttype"))
    if content_type is not None:
        headers = (("content-type", content_type), *headers)
    decoded = decode(orjson.dumps(event["data"]), headers)
    assert isinstance(decoded.data, MessageSentV1)
    assert str(decoded.id) == event["id"]


def test_the_last_content_type_header_decides() -> None:
    event = event_dict(EventType.LEAD_CREATED)
    structured_last = (("content-type", b"application/json"), ("content-type", b"application/cloudevents+json"))
    assert str(decode(event, (*_stray_headers(event), *structured_last)).id) == event["id"]
    binary_last = (structured_last[1], structured_last[0])
    assert reason_of(event, (*_stray_headers(event), *binary_last)) is Reason.INVALID_HEADERS  # ce_source


def test_ce_headers_without_specversion_under_a_plain_content_type_are_invalid() -> None:
    data = orjson.dumps(event_dict(EventType.MESSAGE_SENT)["data"])
    headers = (("content-type", b"application/json"), ("ce_id", b"x"), ("ce_type", b"message.sent"))
    assert reason_of(data, headers) is Reason.INVALID_HEADERS


def test_no_ce_headers_is_structured_whatever_else_the_record_carries() -> None:
    event = event_dict(EventType.LEAD_CREATED)
    decoded = decode(event, (("content-type", b"application/json"), ("traceparent", b"00-abc")))
    assert str(decoded.id) == event["id"]
