"""The fast path (pydantic-core on the JSON bytes) returns only what the reference path (orjson, the exact
duplicate-key check, validation of the parsed dict) returns, for inputs a careless producer or an
attacker could send; and no input makes the decoder raise anything but ``InvalidEvent``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from salesflow.domain import decoding, json_strict
from salesflow.domain.decoding import decode_event
from salesflow.domain.events import CloudEvent, EventType
from salesflow.errors import InvalidEvent
from salesflow.producer.demo import DemoGenerator
from tests.factories import PAYLOADS, make_event

UUID_B = "00000000-0000-4000-8000-00000000000b"
ENVELOPE_KEYS = ["specversion", "id", "source", "type", "time", "tenantid", "requestid", "dataschema", "data"]
DATA_KEYS = sorted({key for payload in PAYLOADS.values() for key in payload})

# Values where JSON-mode and Python-mode validation, or pydantic-core's and orjson's parsers, could part.
TRICKY: list[Any] = [
    None, True, False, 0, 1, -1, 2.0, 0.5, 2**31, 2**53 + 1, 2**63, 2**64, 2**70, 1e300, 1e-300, 1.5e10,
    float("inf"), float("-inf"), float("nan"), "", " ", "900", "2.0", "-1", "true", "yes", "on", "1", "0",
    "2026-11-24T12:00:00Z", "2026-11-24T12:00:00", "2026-11-24", "2026-11-24T12:00:00+23:59",
    "9999-12-31T23:59:59-01:00", "1700000000", 1700000000, 1700000000.5, UUID_B, UUID_B.upper(),
    "{" + UUID_B + "}", "urn:uuid:" + UUID_B, UUID_B.replace("-", ""), "\x00", 'a:b"c\\d', "\u00e9",
    "\U0001f600", "lead.created", "message.sent", "v1", "v2", "1.0", "web_form", "WEB_FORM", "email",
    [], {}, [1, {"a": 1}], {"a": {"b": [1, 2]}}, {"x": 1, "y": {"x": 2}},
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.sampled_from(TRICKY),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(ENVELOPE_KEYS + DATA_KEYS) | st.text(max_size=6)
edits = st.lists(st.tuples(st.booleans(), keys, st.none() | json_values), max_size=3)


def _encode(event: dict[str, Any], style: int) -> bytes:
    # json, not orjson: it writes integers past 64 bits, NaN and Infinity, as careless producers do.
    if style == 0:
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    if style == 1:  # Python's defaults: spaces, and ASCII only, so non-ASCII text becomes escapes
        return json.dumps(event).encode()
    return json.dumps(event, separators=(",", ":")).encode()


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A valid event of any type, bent by a few edits, serialized in one of three styles, sometimes
    with a raw member (a possible duplicate key) spliced into the envelope or the data."""
    event = make_event(draw(st.sampled_from(list(EventType))))
    for in_data, key, value in draw(edits):
        target = event["data"] if in_data and isinstance(event.get("data"), dict) else event
        if value is None and draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = value
    raw = _encode(event, draw(st.integers(0, 2)))
    if draw(st.booleans()):
        key, value = draw(keys), draw(json_values)
        member = _encode({key: value}, 0)[1:-1] + b","
        at = raw.find(b'"data":{') + len(b'"data":{') if draw(st.booleans()) else 1
        if at > 0 and raw[:1] == b"{":
            raw = raw[:at] + member + raw[at:]
    return raw


def _reference(raw: bytes) -> CloudEvent[Any] | None:
    try:
        return decoding.validate_envelope(json_strict.loads(raw, root=""))
    except InvalidEvent:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
@example(orjson.dumps(make_event(EventType.LEAD_CREATED, score=1)).replace(b'{"score"', b'{"score":2,"score"'))
@example(orjson.dumps(make_event(EventType.AUTOPILOT_ACTION_EXECUTED)).replace(b'"tokens":900', b'"tokens":1e400'))
@example(orjson.dumps(make_event(EventType.AUTOPILOT_ACTION_EXECUTED)).replace(b'"tokens":900', b'"tokens":Infinity'))
@example(orjson.dumps(make_event(EventType.AUTOPILOT_ACTION_EXECUTED)).replace(b'"tokens":900', b'"x":1' + b"0" * 30))
@example(
    orjson.dumps(make_event(EventType.AUTOPILOT_ACTION_EXECUTED)).replace(b'"value_usd":40.0', b'"value_usd":1e999')
)
@example(
    orjson.dumps(make_event(EventType.SEQUENCE_STEP_EXECUTED)).replace(b'"step_count":3', b'"step_count":' + b"9" * 25)
)
def test_the_fast_path_returns_only_what_the_reference_path_returns(raw: bytes) -> None:
    fast = decoding._validate_json(raw)
    reference = _reference(raw)
    if fast is None:
        return
    assert reference is not None, "the fast path accepted what the reference path rejects"
    assert type(fast) is type(reference)
    assert fast == reference
    assert fast.model_fields_set == reference.model_fields_set
    assert fast.data.model_fields_set == reference.data.model_fields_set


@pytest.mark.parametrize(
    "dumps",
    [
        orjson.dumps,
        lambda event: json.dumps(event).encode(),  # spaces after separators; non-ASCII as \u escapes
        lambda event: json.dumps(event, indent=2, separators=(",", " : ")).encode(),  # spaces before colons
    ],
    ids=["orjson", "json-default", "pretty"],
)
def test_ordinary_producers_records_take_the_fast_path(dumps: Callable[[dict[str, Any]], bytes]) -> None:
    # The fast path is not a dead branch: the demo mix, with an extra nested attribute and non-ASCII
    # text, written three ways, never needs the reference path.
    for event in DemoGenerator(seed=3).events(200):
        event["tenantid"] = "t\u00e9nant-\U0001f600"
        event["meta"] = {"trace": ["a:b", {"k": 1.5, "when": "12:00"}]}
        raw = dumps(event)
        fast = decoding._validate_json(raw)
        assert fast is not None, raw
        assert fast == _reference(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | records().map(lambda raw: raw[: len(raw) // 2]))
def test_any_bytes_decode_or_give_a_reason(raw: bytes) -> None:
    try:
        decode_event(raw, (), max_bytes=1 << 16)
    except InvalidEvent as exc:
        assert exc.reason and exc.detail
