"""The `pending` row's one typed reading keeps the decoder's rules: a record the worker dead-letters
for a repeated key leaves no pending row, whichever way the key is repeated; anything the typed reading
does not count (an undeclared or nested key) still reads, through the exact check."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from salesflow.domain import json_strict
from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType
from salesflow.domain.records import RecordIn
from salesflow.errors import InvalidEvent
from salesflow.producer.envelope import encode
from salesflow.projection.rows import PendingRow, pending_row
from salesflow.testing.factories import event_dict

LIMIT = 256 * 1024


def source(value: bytes, headers: tuple[tuple[str, bytes], ...] = ()) -> RecordIn:
    return RecordIn("salesflow.leads.v1", 0, 3, 1_700_000_000_000, b"acme:lead-1", value, headers)


def splice(value: bytes, member: bytes, at: bytes = b"{") -> bytes:
    where = value.index(at) + len(at)
    return value[:where] + member + value[where:]


LEAD = encode(event_dict(EventType.LEAD_CREATED, "acme"))
REPEATS = {
    "id": splice(LEAD, b'"id":"00000000-0000-4000-8000-0000000000d5",'),
    "tenantid": splice(LEAD, b'"tenantid":"someone-else",'),
    "an unread attribute": splice(LEAD, b'"source":"/elsewhere",'),
    "lead_id in data, escaped": splice(LEAD, b'"lead\\u005fid":"lead-x",', b'"data":{'),
    "a payload field": splice(LEAD, b'"campaign":"x",', b'"data":{'),
    "an undeclared key": splice(LEAD, b'"note":1,"note":2,', b'"data":{'),
    "a nested key": splice(LEAD, b'"deep":{"a":1,"a":2},', b'"data":{'),
}


@pytest.mark.parametrize("value", REPEATS.values(), ids=REPEATS.keys())
def test_a_repeated_key_is_no_pending_row_as_the_decoder_dead_letters_it(value: bytes) -> None:
    with pytest.raises(InvalidEvent, match="appears twice"):
        decode_event(value, max_bytes=LIMIT)
    assert pending_row(source(value), LIMIT) is None


ACCEPTED = {
    "an undeclared key": splice(LEAD, b'"note":"hello",', b'"data":{'),
    "an unknown extension": splice(LEAD, b'"partnerid":"p-1",'),
    "a nested object": splice(LEAD, b'"deep":{"a":{"b":[{"c":1}]}},', b'"data":{'),
    "a key spelled with an escape": LEAD.replace(b'"tenantid"', b'"tenant\\u0069d"'),
    "a colon after a quote in a value": splice(LEAD, b'"note":"say \\":\\" twice",', b'"data":{'),
    "whitespace": orjson.dumps(orjson.loads(LEAD), option=orjson.OPT_INDENT_2),
}


@pytest.mark.parametrize("value", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_the_decoder_accepts_is_a_pending_row(value: bytes) -> None:
    event = decode_event(value, max_bytes=LIMIT)
    parsed = pending_row(source(value), LIMIT)
    assert isinstance(parsed, PendingRow)
    assert (parsed.event_id, parsed.tenant_id, parsed.row["lead_id"]) == (event.id, "acme", event.data.lead_id)
    assert parsed.row["type"] == "lead.created" and type(parsed.row["type"]) is str
    assert orjson.loads(parsed.row["payload"]) == orjson.loads(value)


def binary(event: dict[str, Any], data: bytes) -> RecordIn:
    headers = tuple((f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data")
    return source(data, headers)


def test_a_binary_record_with_a_repeated_key_in_its_value_is_no_pending_row() -> None:
    event = event_dict(EventType.LEAD_CREATED, "acme")
    data = orjson.dumps(event["data"])
    assert isinstance(pending_row(binary(event, data), LIMIT), PendingRow)
    repeated = splice(data, b'"lead_id":"lead-x",')
    with pytest.raises(InvalidEvent):
        json_strict.loads(repeated, root="data")
    assert pending_row(binary(event, repeated), LIMIT) is None


def test_a_binary_records_payload_is_its_attributes_and_its_value() -> None:
    event = event_dict(EventType.LEAD_CREATED, "acme")
    data = orjson.dumps(event["data"], option=orjson.OPT_INDENT_2)
    parsed = pending_row(binary(event, data), LIMIT)
    assert isinstance(parsed, PendingRow)
    assert orjson.loads(parsed.row["payload"]) == {
        **{k: str(v) for k, v in event.items() if k != "data"},
        "data": event["data"],
    }


@pytest.mark.parametrize(
    "value",
    [
        b"[]",
        b'"text"',
        b"{",
        b"\xff\xfe",
        encode(event_dict(EventType.LEAD_CREATED, "acme")).replace(b'"data":{', b'"data":[{'),
    ],
    ids=["array", "string", "truncated", "not UTF-8", "data not an object"],
)
def test_what_is_no_event_is_no_pending_row(value: bytes) -> None:
    assert pending_row(source(value), LIMIT) is None
