"""The contract's limits (``domain/limits.py``): what Postgres cannot store is refused as ``invalid_field``
with the field's path, what it can store is accepted up to the bound, and the schemas say so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import CloudEvent, EventType, to_builtins
from salesflow.domain.limits import EXTRA_DEPTH_MAX, EXTRA_TEXT_MAX, ID_MAX, INT32_MAX, MONEY_MAX
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent
from salesflow.testing.factories import event_dict

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
LEAD, ACTION, MESSAGE, STEP = (
    EventType.LEAD_CREATED,
    EventType.AUTOPILOT_ACTION_EXECUTED,
    EventType.MESSAGE_SENT,
    EventType.SEQUENCE_STEP_EXECUTED,
)


def decode(event: dict[str, Any], headers: tuple[tuple[str, bytes], ...] = ()) -> CloudEvent[Any]:
    return decode_event(orjson.dumps(event), headers, max_bytes=1024 * 1024)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def with_data(event_type: EventType, **data: Any) -> dict[str, Any]:
    return event_dict(event_type, **data)


# (event, the path the detail starts with): each beyond what a column or jsonb holds.
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("NUL in lead_id", with_data(LEAD, lead_id="lead\x00-1"), "data.lead_id: contains a NUL"),
    ("NUL in campaign", with_data(LEAD, campaign="\x00"), "data.campaign: contains a NUL"),
    ("NUL in source", {**event_dict(LEAD), "source": "/crm\x00"}, "source: contains a NUL"),
    ("NUL in tenantid", {**event_dict(LEAD), "tenantid": "ac\x00me"}, "tenantid: contains a NUL"),
    ("NUL in requestid", {**event_dict(LEAD), "requestid": "r\x00"}, "requestid: contains a NUL"),
    ("NUL in an extra field", with_data(LEAD, note="a\x00b"), "data.note: contains a NUL"),
    ("NUL deep in an extra field", with_data(LEAD, note={"a": [1, "\x00"]}), "data.note: at a[1]: contains a NUL"),
    ("NUL in an extension attribute", {**event_dict(LEAD), "traceparent": "\x00"}, "traceparent: contains a NUL"),
    ("NUL in an extra field's name", with_data(LEAD, **{"no\x00te": 1}), ": data: the field name 'no\\x00te'"),
    ("NUL in an extension's name", {**event_dict(LEAD), "x\x00": 1}, ": the field name 'x\\x00'"),
    ("NUL in a nested name", with_data(LEAD, note={"\x00": 1}), "data.note: the field name '\\x00'"),
    ("lead_id too long", with_data(LEAD, lead_id="l" * (ID_MAX + 1)), "data.lead_id: Expected `str` of length <= 200"),
    ("extra string too long", with_data(LEAD, note="x" * (EXTRA_TEXT_MAX + 1)), "data.note: a string longer"),
    ("extra nested too deep", with_data(LEAD, note=nested(EXTRA_DEPTH_MAX + 1)), "data.note: at "),
    ("cost_usd 1e9", with_data(ACTION, cost_usd=1e9), "data.cost_usd: Expected `float` <= 99999999.999999"),
    ("cost_usd 1e40", with_data(ACTION, cost_usd=1e40), "data.cost_usd: Expected `float` <= 99999999.999999"),
    ("cost_usd rounds up to 1e8", with_data(ACTION, cost_usd=99_999_999.9999999), "data.cost_usd:"),
    ("value_usd 1e8", with_data(ACTION, value_usd=1e8), "data.value_usd:"),
    ("tokens 2**31", with_data(ACTION, tokens=2**31), "data.tokens: Expected `int` <= 2147483647"),
    ("step_index 2**31", with_data(STEP, step_index=2**31), "data.step_index: Expected `int` <= 2147483647"),
    ("step_count 2**31", with_data(STEP, step_count=2**31), "data.step_count:"),
    ("time past year 9999 in UTC", {**event_dict(LEAD), "time": "9999-12-31T23:59:59-01:00"}, "time: Input should"),
    ("time 0001-01-01", {**event_dict(LEAD), "time": "0001-01-01T00:00:00Z"}, "time: Input should be greater"),
    ("time before 1970 in UTC", {**event_dict(LEAD), "time": "1970-01-01T00:59:59+01:00"}, "time:"),
    ("sent_at at the upper bound", with_data(MESSAGE, sent_at="9999-12-31T00:00:00Z"), "data.sent_at:"),
    ("queued_at in year 1", with_data(MESSAGE, queued_at="0001-01-01T00:00:00Z"), "data.queued_at:"),
]


@pytest.mark.parametrize(("event", "detail"), [(e, d) for _, e, d in REFUSED], ids=[n for n, *_ in REFUSED])
def test_what_postgres_cannot_store_is_an_invalid_field_with_its_path(event: dict[str, Any], detail: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(event)
    assert caught.value.reason == Reason.INVALID_FIELD
    assert caught.value.detail.startswith(detail), caught.value.detail
    assert "\x00" not in caught.value.detail, "the detail travels in a header and into a text column"
    assert caught.value.event_id == event["id"]


def test_binary_mode_attributes_have_the_same_limits() -> None:
    event = event_dict(LEAD)
    headers = tuple((f"ce_{k}", str(v).encode()) for k, v in event.items() if k != "data")
    for name, bad in (("ce_tenantid", b"ac\x00me"), ("ce_time", b"0001-01-01T00:00:00Z"), ("ce_trace", b"\x00")):
        with pytest.raises(InvalidEvent) as caught:
            decode(event["data"], (*[h for h in headers if h[0] != name], (name, bad)))
        assert caught.value.reason == Reason.INVALID_FIELD and caught.value.detail.startswith(name[3:]), name


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("cost_usd at its maximum", with_data(ACTION, cost_usd=MONEY_MAX, value_usd=MONEY_MAX)),
    ("cost_usd 0", with_data(ACTION, cost_usd=0, value_usd=0)),
    ("int32 maxima", with_data(STEP, step_index=INT32_MAX, step_count=INT32_MAX)),
    ("tokens at its maximum", with_data(ACTION, tokens=INT32_MAX)),
    ("the first instant", {**event_dict(LEAD), "time": "1970-01-01T00:00:00Z"}),
    ("the last instant", {**event_dict(LEAD), "time": "9999-12-30T23:59:59.999999Z"}),
    ("the last instant, east of UTC", {**event_dict(LEAD), "time": "9999-12-31T13:59:59+14:00"}),
    ("astral and other text", with_data(LEAD, lead_id="💼" * ID_MAX, campaign="日本語 \t\n\u202e")),
    ("extra values jsonb holds", with_data(LEAD, note={"n": [2**63 - 1, -(2**63), 1e308, True, None, "x"]})),
    ("the longest extra string", with_data(LEAD, note="x" * EXTRA_TEXT_MAX)),
    ("the deepest extra field", with_data(LEAD, note=nested(EXTRA_DEPTH_MAX))),
]


@pytest.mark.parametrize("event", [e for _, e in ACCEPTED], ids=[n for n, _ in ACCEPTED])
def test_values_up_to_the_bounds_are_accepted_and_kept(event: dict[str, Any]) -> None:
    decoded = decode(event)
    assert to_builtins(decoded)["data"] == orjson.loads(orjson.dumps(event["data"]))


def test_python_producers_meet_the_same_limits_for_numbers_json_cannot_carry() -> None:
    from salesflow.domain.decoding import validate_envelope

    for bad in (float("nan"), float("inf"), 2**64, object()):
        with pytest.raises(InvalidEvent) as caught:
            validate_envelope(with_data(LEAD, note=[bad]))
        assert caught.value.detail.startswith("data.note: at [0]: "), caught.value.detail
    with pytest.raises(InvalidEvent):
        validate_envelope(with_data(ACTION, cost_usd=float("nan")))


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        (LEAD, "lead_id", "a\x00b"),
        (LEAD, "note", "a\x00b"),
        (ACTION, "cost_usd", 1e9),
        (ACTION, "tokens", 2**31),
        (STEP, "step_index", 2**31),
        (LEAD, "lead_id", "l" * (ID_MAX + 1)),
    ],
)
def test_the_schemas_state_the_limits_for_producers(event_type: EventType, field: str, value: Any) -> None:
    schema = json.loads((SCHEMAS / event_type.value / "v1.json").read_text())
    jsonschema.validate(event_dict(event_type), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(event_dict(event_type, **{field: value}), schema)


def test_the_schemas_state_the_time_range() -> None:
    schema = json.loads((SCHEMAS / "message.sent" / "v1.json").read_text())
    for where in (schema["properties"]["time"], schema["$defs"]["MessageSentV1"]["properties"]["sent_at"]):
        assert where["formatMinimum"] == "1970-01-01T00:00:00Z"
        assert where["formatExclusiveMaximum"] == "9999-12-31T00:00:00Z"
