"""Hypothesis strategies for events at, and just past, the contract's limits (``domain/limits.py``).

``draw_events(n)`` gives ``n`` events, the same on every run but for their ids: every value within the
limits and many at one (any Unicode but surrogates, the longest fields, the money, count and time
bounds, extra fields of every JSON shape); one in three has one value just past one limit, each limit
in turn.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from salesflow.domain.events import EventType
from salesflow.domain.limits import EXTRA_DEPTH_MAX, EXTRA_TEXT_MAX, ID_MAX, INT32_MAX, KIND_MAX, MONEY_MAX, NAME_MAX
from salesflow.producer.envelope import envelope

# Any character but a surrogate (JSON text cannot carry a lone one); NUL only where it is drawn on purpose.
ANY_CHAR = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
ASTRAL = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=["Cs"])


def texts(max_size: int, min_size: int = 1) -> st.SearchStrategy[str]:
    """Within the limit: short, or exactly at it (a drawn piece repeated, so long ones are cheap to draw)."""
    piece = st.text(st.one_of(ANY_CHAR, ASTRAL), min_size=max(min_size, 1), max_size=12)
    return st.one_of(piece, piece.map(lambda p: (p * max_size)[:max_size]))


def money() -> st.SearchStrategy[float]:
    edges = [0.0, 5e-324, 1e-7, 0.000001, 0.0000005, MONEY_MAX, 99_999_999.9999994]
    return st.one_of(st.sampled_from(edges), st.floats(0, MONEY_MAX, allow_nan=False))


def counts(least: int = 0) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([least, INT32_MAX]), st.integers(least, INT32_MAX))


ZONES = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
TIME_EDGES = [
    "1970-01-01T00:00:00Z",
    "1970-01-01T01:00:00+01:00",
    "1970-01-01T00:00:00.000001Z",
    "9999-12-30T23:59:59.999999Z",
    "9999-12-31T13:59:59.999999+14:00",
    "9999-12-30T12:00:00-11:59",
]


def times() -> st.SearchStrategy[str]:
    drawn = st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 29), timezones=ZONES).map(datetime.isoformat)
    return st.one_of(st.sampled_from(TIME_EDGES), drawn)


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(st.one_of(ANY_CHAR, ASTRAL), max_size=30),
    )
    names = st.text(ANY_CHAR, min_size=1, max_size=20)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3))


def deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"d": value}
    return value


def extras() -> st.SearchStrategy[dict[str, Any]]:
    names = st.text(ANY_CHAR, min_size=1, max_size=30).filter(lambda n: n not in RESERVED)
    shapes = st.one_of(json_values(), st.sampled_from([deep(EXTRA_DEPTH_MAX), "x" * EXTRA_TEXT_MAX]))
    return st.dictionaries(names, shapes, max_size=2)


RESERVED = {"lead_id", "source", "campaign", "channel", "owner_id", "autopilot", "action_id", "action_type", "model"}
RESERVED |= {"cost_usd", "tokens", "outcome", "value_usd", "message_id", "queued_at", "sent_at", "sequence_id"}
RESERVED |= {"autopilot_action_id", "step_index", "step_count", "action", "status"}

CHANNELS = st.sampled_from(["whatsapp", "email", "linkedin", "sms"])


@st.composite
def payloads(draw: st.DrawFn, event_type: EventType) -> dict[str, Any]:
    data: dict[str, Any] = {"lead_id": draw(texts(ID_MAX))}
    if event_type == EventType.LEAD_CREATED:
        data |= {"source": "api", "campaign": draw(texts(NAME_MAX, 0)), "owner_id": draw(texts(ID_MAX))}
        data |= {"channel": draw(CHANNELS), "autopilot": draw(st.booleans())}
    elif event_type == EventType.AUTOPILOT_ACTION_EXECUTED:
        data |= {"action_id": draw(texts(ID_MAX)), "action_type": draw(texts(KIND_MAX))}
        data |= {"model": draw(texts(NAME_MAX, 0)), "cost_usd": draw(money()), "value_usd": draw(money())}
        data |= {"tokens": draw(counts()), "outcome": draw(st.sampled_from(["succeeded", "failed", "skipped"]))}
    elif event_type == EventType.MESSAGE_SENT:
        data |= {"message_id": draw(texts(ID_MAX)), "channel": draw(CHANNELS)}
        data |= {"queued_at": draw(times()), "sent_at": draw(times()), "sequence_id": draw(texts(ID_MAX))}
        data |= {"autopilot_action_id": draw(texts(ID_MAX))}
    else:
        data |= {"sequence_id": draw(texts(ID_MAX)), "step_index": draw(counts())}
        data |= {"step_count": draw(counts(1)), "action": draw(texts(KIND_MAX))}
        data |= {"status": draw(st.sampled_from(["executed", "skipped", "failed"]))}
    return data | draw(extras())


# Just past a limit: (where, what) applied to one field of an event that is otherwise within them.
PAST_LIMITS: list[tuple[str, Any]] = [
    ("text+1", None),
    ("nul", None),
    ("data.cost_usd", 99_999_999.9999996),
    ("data.cost_usd", 1e9),
    ("data.cost_usd", 1e40),
    ("data.value_usd", 1e8),
    ("data.tokens", INT32_MAX + 1),
    ("data.step_index", INT32_MAX + 1),
    ("data.step_count", 2**63),
    ("time", "1969-12-31T23:59:59.999999Z"),
    ("time", "9999-12-31T00:00:00Z"),
    ("time", "9999-12-31T23:59:59-01:00"),
    ("time", "0001-01-01T00:00:00Z"),
    ("data.sent_at", "9999-12-31T14:00:00+14:00"),
    ("data.queued_at", "1970-01-01T00:59:59+01:00"),
    ("data.note", deep(EXTRA_DEPTH_MAX + 1)),
    ("data.note", "x" * (EXTRA_TEXT_MAX + 1)),
    ("data.note", {"a": ["\x00"]}),
    ("ext", "\x00"),
]
STRING_FIELDS = {"tenantid": ID_MAX, "source": 2048, "requestid": 256}
DATA_STRINGS = {"lead_id": ID_MAX, "campaign": NAME_MAX, "model": NAME_MAX, "action_type": KIND_MAX}
DATA_STRINGS |= {"message_id": ID_MAX, "sequence_id": ID_MAX, "action": KIND_MAX}


def past_a_limit(event: dict[str, Any], k: int) -> dict[str, Any]:
    """The event with one value just past a limit: the ``k``-th of ``PAST_LIMITS``, in turn, so each is
    exercised (a field the event's type lacks is added, as an extra field)."""
    where, value = PAST_LIMITS[k % len(PAST_LIMITS)]
    if where in ("text+1", "nul"):
        fields = [("", name, n) for name, n in STRING_FIELDS.items()]
        fields += [("data", name, n) for name, n in DATA_STRINGS.items() if name in event["data"]]
        scope, name, limit = fields[k % len(fields)]
        value = "y" * (limit + 1) if where == "text+1" else f"x\x00{k}"
        where = f"{scope}.{name}".lstrip(".")
    if where.startswith("data."):
        return event | {"data": event["data"] | {where[5:]: value}}
    return event | {where: value}


@st.composite
def extreme_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event whose every value is within the limits, many of them at one."""
    event_type = draw(st.sampled_from(list(EventType)))
    event = envelope(event_type, draw(texts(ID_MAX)), draw(payloads(event_type)), event_id=uuid4())
    event |= {"time": draw(times()), "source": draw(texts(2048)), "requestid": draw(texts(256, 0))}
    return event | {f"ext{n}": value for n, value in enumerate(draw(st.lists(json_values(), max_size=2)))}


def draw_events(count: int) -> list[dict[str, Any]]:
    """``count`` events from Hypothesis, the same on every run (but their ids)."""
    drawn: list[dict[str, Any]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(extreme_events())
    def collect(event: dict[str, Any]) -> None:
        drawn.append(event)

    collect()
    # One in three goes just past one limit, each limit in turn.
    return [past_a_limit(event, n // 3) if n % 3 == 0 else event for n, event in enumerate(drawn)]
