"""The duplicate-key gate (byte counts against the keys orjson kept) never lets a repeated key through,
for inputs a careless producer or an attacker could send; ordinary records pass it without the exact
check; and no input makes the decoder raise anything but ``InvalidEvent``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jiter
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from salesflow.domain import json_strict
from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType
from salesflow.errors import InvalidEvent
from salesflow.producer.demo import DemoGenerator
from salesflow.testing.factories import PAYLOADS, event_dict

ENVELOPE_KEYS = ["specversion", "id", "source", "type", "time", "tenantid", "requestid", "dataschema", "data"]
DATA_KEYS = sorted({key for payload in PAYLOADS.values() for key in payload})
TRICKY_TEXT = ["", ":", '":', ' ":"', "\\", '\\":', "a:b", "12:00", "\u00e9", "\U0001f600", "\x00", "i\u0064", "id"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.sampled_from(TRICKY_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(ENVELOPE_KEYS + DATA_KEYS + TRICKY_TEXT) | st.text(max_size=4)


def _encode(event: Any, style: int) -> bytes:
    # json, not orjson: it writes integers past 64 bits, NaN and Infinity, as careless producers do.
    if style == 0:
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    if style == 1:  # Python's defaults: spaces after separators, non-ASCII text as escapes
        return json.dumps(event).encode()
    return json.dumps(event, indent=1, separators=(",", " : ")).encode()  # whitespace before colons


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A valid event with a few members added, in one of three styles, and sometimes a raw member
    spliced into the envelope or the data: a repeated key, or one that only looks like one."""
    event = event_dict(draw(st.sampled_from(list(EventType))))
    for in_data, key, value in draw(st.lists(st.tuples(st.booleans(), keys, json_values), max_size=3)):
        (event["data"] if in_data and isinstance(event.get("data"), dict) else event)[key] = value
    raw = _encode(event, draw(st.integers(0, 2)))
    if draw(st.booleans()):
        member = _encode({draw(keys): draw(json_values)}, 0)[1:-1] + b","
        brace = raw.find(b"{", raw.find(b'"data"')) if draw(st.booleans()) else 0
        at = max(brace, 0) + 1
        raw = raw[:at] + member + raw[at:]
    return raw


def _jiter_finds_a_duplicate(raw: bytes) -> bool:
    try:
        jiter.from_json(raw, catch_duplicate_keys=True)
    except ValueError as exc:
        return "duplicate key" in str(exc)
    return False


@settings(max_examples=500, deadline=None)
@given(records())
@example(orjson.dumps(event_dict(EventType.LEAD_CREATED, score=1)).replace(b'{"score"', b'{"score":2,"score"'))
@example(orjson.dumps(event_dict(EventType.LEAD_CREATED)).replace(b'{"lead_id"', b'{"lead\\u005fid":"x","lead_id"'))
@example(orjson.dumps(event_dict(EventType.LEAD_CREATED)).replace(b'{"lead_id"', b'{"x":"a\\":","lead_id"'))
def test_the_gate_passes_no_repeated_key(raw: bytes) -> None:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    repeated = json_strict.find_duplicate_key(raw) is not None
    assert repeated == _jiter_finds_a_duplicate(raw)  # the two exact checks agree
    gate_passes = json_strict.key_token_bound(raw) == json_strict.key_count(parsed)
    assert not (gate_passes and repeated)
    if repeated:
        with pytest.raises(InvalidEvent) as caught:
            json_strict.loads(raw, root="")
        assert caught.value.reason == "duplicate_key"


@pytest.mark.parametrize(
    "dumps",
    [
        orjson.dumps,
        lambda event: json.dumps(event).encode(),  # spaces after separators; non-ASCII as \u escapes
        lambda event: json.dumps(event, indent=2, separators=(",", " : ")).encode(),  # spaces before colons
    ],
    ids=["orjson", "json-default", "pretty"],
)
def test_ordinary_records_pass_the_gate_without_the_exact_check(dumps: Callable[[dict[str, Any]], bytes]) -> None:
    for event in DemoGenerator(seed=3).events(200):
        event["tenantid"] = "t\u00e9nant-\U0001f600"
        event["meta"] = {"trace": ["a:b", {"k": 1.5, "when": "12:00"}]}
        raw = dumps(event)
        assert json_strict.key_token_bound(raw) == json_strict.key_count(orjson.loads(raw)), raw
        assert decode_event(raw, (), max_bytes=1 << 16).tenant_id == event["tenantid"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | records().map(lambda raw: raw[: len(raw) // 2]))
def test_any_bytes_decode_or_give_a_reason(raw: bytes) -> None:
    try:
        decode_event(raw, (), max_bytes=1 << 16)
    except InvalidEvent as exc:
        assert exc.reason and exc.detail
