"""The projection reads an outcome record two ways: typed (msgspec, fast) and exact (orjson, the
definition). Whatever the typed reading takes must come out as the exact reading's rows, value and type
alike, and whatever it does not take is left to the exact reading, rejections and their errors included.

Outcomes of every fact kind, bent by a careless or hostile producer: a value of another type, a
nested one, an int beyond 64 bits, a time or id in a form one parser takes and the other does not, a
key missing or given twice, bytes cut short, a fact of another kind, event or tenant.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import uuid4

import msgspec
import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from salesflow.domain.events import StepStatus
from salesflow.domain.outputs import SequenceStepFact
from salesflow.domain.records import RecordIn
from salesflow.projection.items import OutcomeRows
from salesflow.projection.outcome_reading import parse_outcome, parse_outcome_exact, read_typed
from salesflow.testing.factories import T0
from tests.unit.test_projection_rows import outcome

EVENT_ID = uuid4()
STEP = SequenceStepFact(
    event_id=EVENT_ID,
    tenant_id="acme",
    lead_id="lead-1",
    occurred_at=T0,
    sequence_id="s",
    step_index=2,
    step_count=3,
    action="email",
    status=StepStatus.EXECUTED,
    completed=True,
)
BASE: dict[str, Any] = orjson.loads(msgspec.json.encode(outcome(EVENT_ID)))
BASE["facts"].append(orjson.loads(msgspec.json.encode(STEP)))

TIMES = [
    "2026-11-24T12:00:00Z",
    "2026-11-24T12:00:00.1234567Z",  # msgspec rounds a 7th digit, Python cuts it
    "2026-11-24t12:00:00z",  # lower case: RFC 3339 yes, Python 3.11 no
    "2026-11-24 12:00:00+01:00",
    "2026-11-24T12:00Z",
    "20261124T120000Z",
    "2026-11-24T12:00:00,5+00:00",
    "2026-11-24T12:00:00",  # no zone
    "2026-11-24T12:00:60Z",
    "9999-12-31T23:59:59-01:00",
    "2026-11-24T12:00:00+01:00:30",
]
IDS = [
    str(EVENT_ID),
    str(EVENT_ID).upper(),
    EVENT_ID.hex,
    f"{{{EVENT_ID}}}",
    f"urn:uuid:{EVENT_ID}",
    str(EVENT_ID)[:-1] + "g",
    str(uuid4()),
]
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(TIMES + IDS + ["acme", "funnel", "message", "horoscope"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["topic", "partition", "offset", "kind"]), st.integers(), max_size=2),
)


@st.composite
def bent(draw: st.DrawFn) -> dict[str, Any]:
    """The base outcome with a few of its values (top level, position or a fact) replaced or removed."""
    value: dict[str, Any] = orjson.loads(orjson.dumps(BASE))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(["top", "position", "fact"]))
        facts: Any = value.get("facts")
        if where == "fact" and not (isinstance(facts, list) and facts):
            continue  # an earlier bend removed or replaced the facts
        target = (
            value
            if where == "top"
            else value.get("position")
            if where == "position"
            else facts[draw(st.integers(min_value=0, max_value=len(facts) - 1))]
        )
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            target[key] = draw(odd_values)
        else:
            del target[key]
    return value


def dumps(value: Any) -> bytes:
    """As JSON, ints beyond 64 bits included (orjson refuses to write them)."""
    return json.dumps(value).encode()


def with_repeated_key(value: dict[str, Any], key: str, first: Any) -> bytes:
    """``value`` as JSON with ``key`` given twice: ``first``, then its own value."""
    body = dumps(value)
    return b'{"' + key.encode() + b'":' + dumps(first) + b"," + body[1:]


def reading(read: Any, value: bytes) -> tuple[Any, ...]:
    try:
        rows = read(RecordIn("outcomes", 0, 0, 1, b"k", value, ()))
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return ("rejected", f"{type(exc).__name__}: {exc}")
    assert isinstance(rows, OutcomeRows)
    return ("rows", exact_types(rows.event), exact_types(rows.facts), rows.event_id, rows.processed_at)


def exact_types(value: Any) -> Any:
    """``value`` with each leaf's type beside it: 1 and 1.0 and True are not the same column value."""
    if isinstance(value, dict):
        return {k: exact_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact_types(v) for v in value]
    return (type(value), value, getattr(value, "utcoffset", lambda: None)())


def assert_same_reading(value: bytes) -> None:
    exact = reading(parse_outcome_exact, value)
    assert reading(parse_outcome, value) == exact
    typed = reading(read_typed, value)
    if typed[0] == "rows":  # what the typed reading takes, the exact one takes the same way
        assert typed == exact


def test_the_base_outcome_is_read_typed() -> None:
    value = dumps(BASE)
    assert reading(read_typed, value)[0] == "rows"
    assert_same_reading(value)


@settings(max_examples=600, deadline=None)
@given(bent())
@example({**BASE, "occurred_at": "2026-11-24T12:00:00.1234567Z"})
@example({**BASE, "processed_at": "2026-11-24t12:00:00z"})
@example({**BASE, "attempts": 2**64})
@example({**BASE, "position": {**BASE["position"], "offset": 2**63}})
@example({**BASE, "event_id": EVENT_ID.hex})
@example({**BASE, "facts": [{**BASE["facts"][0], "event_id": str(EVENT_ID).upper()}]})
@example({**BASE, "facts": [{**BASE["facts"][0], "stage": {"nested": 1}}]})
@example({**BASE, "facts": [{**BASE["facts"][1], "cost_usd": 1}]})
@example({**BASE, "replay": 1})
@example({**BASE, "facts": None})
def test_a_bent_outcome_reads_the_same_both_ways(value: dict[str, Any]) -> None:
    assert_same_reading(dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["event_id", "tenant_id", "processed_at", "facts", "attempts", "kind"]), odd_values)
def test_a_key_given_twice_reads_the_same_both_ways(key: str, first: Any) -> None:
    assert_same_reading(with_repeated_key(BASE, key, first))
    fact = with_repeated_key(BASE["facts"][0], key, first)
    assert_same_reading(dumps({**BASE, "facts": []})[:-3] + b"[" + fact + b"]}")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(dumps(BASE))), st.binary(max_size=4))
def test_cut_or_garbled_bytes_read_the_same_both_ways(cut: int, tail: bytes) -> None:
    assert_same_reading(dumps(BASE)[:cut] + tail)


def test_a_fact_of_another_event_or_tenant_is_the_exact_readings_rejection() -> None:
    for change in ({"event_id": str(uuid4())}, {"tenant_id": "globex"}):
        value = dumps({**BASE, "facts": [{**BASE["facts"][0], **change}]})
        assert reading(parse_outcome, value)[0] == "rejected"
        assert_same_reading(value)


def test_times_keep_their_offset() -> None:
    value = dumps({**BASE, "processed_at": "2026-11-24T13:00:00+01:00"})
    _, event, *_ = reading(parse_outcome, value)
    assert event["processed_at"][1] == T0 and event["processed_at"][2] == timedelta(hours=1)
