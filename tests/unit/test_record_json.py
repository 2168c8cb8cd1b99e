"""The worker's record JSON (``processor.records.struct_json``): every outcome and command it can write
reads back as the same struct, times keep their instant (UTC written with ``Z``), and facts carry the
``kind`` the projection picks their table by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.domain.limits import INT32_MAX, MONEY_MAX
from salesflow.domain.outcome import EventStatus, HandlerReport, Outcome, SourcePosition
from salesflow.domain.outputs import AutopilotCommand, Command, FactModel, NotificationRequest
from salesflow.processor.outbound import struct_json

# Any offset, any precision: a record holds aware times only (a fact refuses a naive one).
datetimes = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(min_value=datetime(1970, 1, 1, 6), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.replace(tzinfo=timezone(timedelta(minutes=-330)))
)
money = st.floats(min_value=0, max_value=MONEY_MAX)
finite = st.floats(allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=INT32_MAX)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
text = st.text(st.characters(exclude_characters="\x00", categories=("L", "M", "N", "P", "S", "Z")), max_size=20)


def structs_of(struct: type[Any], **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Any struct of ``struct`` whose values fit their columns (a fact refuses any other)."""
    fields = msgspec.structs.fields(struct)
    values: dict[str, st.SearchStrategy[Any]] = {f.name: datetimes for f in fields if f.type == datetime}
    values |= {f.name: text for f in fields if f.type in (str, str | None)}
    values |= dict.fromkeys(getattr(struct, "money", ()), money)
    values |= dict.fromkeys(getattr(struct, "counts", ()), counts)
    values |= {f.name: finite for f in fields if f.type is float and f.name not in values}
    return st.builds(struct, **(values | overrides))


facts = st.one_of(*(structs_of(m) for m in get_args(FactModel)))
outcomes = st.builds(
    Outcome,
    status=st.sampled_from([EventStatus.PROCESSED, EventStatus.FAILED]),
    occurred_at=datetimes,
    processed_at=datetimes,
    attempts=ints,
    position=st.builds(SourcePosition, partition=ints, offset=ints),
    handlers=st.lists(st.builds(HandlerReport, attempts=ints), max_size=4).map(tuple),
    facts=st.lists(facts, max_size=4).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(outcomes)
def test_an_outcome_reads_back_as_written(outcome: Outcome) -> None:
    written = struct_json(outcome)
    assert msgspec.json.decode(written, type=Outcome) == outcome
    raw = orjson.loads(written)
    assert [fact["kind"] for fact in raw["facts"]] == [type(f).__struct_config__.tag for f in outcome.facts]
    if outcome.processed_at.tzinfo is UTC:
        assert raw["processed_at"].endswith("Z")


@settings(max_examples=100, deadline=None)
@given(st.one_of(structs_of(AutopilotCommand), structs_of(NotificationRequest)))
def test_a_command_reads_back_as_written(command: Command) -> None:
    assert msgspec.json.decode(struct_json(command), type=AutopilotCommand | NotificationRequest) == command
