"""The worker's record JSON (``processor.records.model_json``) is byte for byte what pydantic writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from salesflow.domain.outcome import EventStatus, HandlerReport, Outcome, SourcePosition
from salesflow.domain.outputs import AutopilotCommand, Command, FactModel, NotificationRequest
from salesflow.processor.records import model_json

RECORD_MODELS: tuple[type[BaseModel], ...] = (
    Outcome,
    HandlerReport,
    SourcePosition,
    *get_args(FactModel),
    AutopilotCommand,
    NotificationRequest,
)

# Any offset, any precision: the serializers must agree on every datetime a record can hold.
datetimes = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC, None])
) | st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.replace(tzinfo=timezone(timedelta(minutes=-330)))
)
floats = st.floats(allow_nan=True, allow_infinity=True)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def models_of(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    return st.builds(model, **{n: datetimes for n, f in model.model_fields.items() if f.annotation == datetime})


facts = st.one_of(
    *(
        st.builds(m, occurred_at=datetimes, cost_usd=floats, value_usd=floats)
        if "cost_usd" in m.model_fields
        else models_of(m)
        for m in get_args(FactModel)
    )
)
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
def test_an_outcome_is_written_as_pydantic_writes_it(outcome: Outcome) -> None:
    assert model_json(outcome) == outcome.model_dump_json().encode()


@settings(max_examples=100, deadline=None)
@given(st.one_of(models_of(AutopilotCommand), models_of(NotificationRequest)))
def test_a_command_is_written_as_pydantic_writes_it(command: Command) -> None:
    assert model_json(command) == command.model_dump_json().encode()


def test_an_integer_beyond_64_bits_falls_back_to_pydantic() -> None:
    position = SourcePosition.model_construct(topic="t", partition=0, offset=2**70)
    assert model_json(position) == position.model_dump_json().encode()


@pytest.mark.parametrize("model", RECORD_MODELS, ids=lambda m: m.__name__)
def test_record_models_have_nothing_that_model_json_would_bypass(model: type[BaseModel]) -> None:
    # model_json writes a model's __dict__: a serializer, computed field or alias would be skipped.
    decorators = model.__pydantic_decorators__
    assert not decorators.field_serializers and not decorators.model_serializers
    assert not decorators.computed_fields
    assert all(f.alias is None and f.serialization_alias is None for f in model.model_fields.values())
    assert model.model_config.get("extra") != "allow"
