"""Versions and upcasting: ``dataschema`` forms, every valid older payload upcast to a valid newer one
(Hypothesis, for each upcaster in the table), v1 facts unchanged, and what has no path dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from salesflow.domain.decoding import decode_event, validate_envelope
from salesflow.domain.events import (
    MODEL_VERSIONS,
    PAYLOAD_MODELS,
    EventType,
    LeadCreatedV1,
    LeadCreatedV2,
    Payload,
    to_builtins,
)
from salesflow.domain.records import DLQ_REASON, RecordIn
from salesflow.domain.topics import Topics
from salesflow.domain.upcasting import UPCASTERS, upcast
from salesflow.domain.versions import schema_uri
from salesflow.errors import DeadLetterReason, InvalidEvent
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers.registry import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.metrics import PipelineMetrics
from salesflow.processor.core import EventProcessor
from salesflow.processor.dispatch import dispatch
from salesflow.producer.envelope import envelope
from salesflow.testing.factories import event_dict
from tests.unit.payload_strategies import payload_dicts

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
TYPE_OF = {model: event_type for (event_type, _), model in PAYLOAD_MODELS.items()}


def lead(dataschema: Any = None, **data: Any) -> dict[str, Any]:
    raw = event_dict(EventType.LEAD_CREATED, **data)
    if dataschema is not None:
        raw["dataschema"] = dataschema
    return raw


@pytest.mark.parametrize(
    ("dataschema", "version"),
    [
        (None, "v1"),  # absent: v1, as before versions
        ("v1", "v1"),  # the bare form of the first producers
        ("urn:salesflow:schema:lead.created:v1", "v1"),
        ("https://schemas.example.com/lead.created/v1.json", "v1"),
        ("salesflow/lead.created/v1.json", "v1"),  # the schema file's $id
        ("v2", "v2"),
        ("urn:salesflow:schema:lead.created:v2", "v2"),
    ],
)
def test_dataschema_names_the_version_as_a_uri_or_bare(dataschema: str | None, version: str) -> None:
    raw = lead(dataschema, campaign=None)
    assert validate_envelope(raw).schema_version == version


@pytest.mark.parametrize(
    "dataschema",
    [
        "v3",  # a version this worker does not know
        "urn:salesflow:schema:lead.created:v3",
        "https://schemas.example.com/message.sent/v1.json",  # another type's schema
        "xv1",
        "v01",
        "v1?x=1",
        "",
        "v" + "9" * 50,
        "/" * 2000 + "v9",
    ],
)
def test_a_dataschema_naming_no_known_version_is_unsupported(dataschema: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        validate_envelope(lead(dataschema))
    assert refused.value.reason is DeadLetterReason.UNSUPPORTED_SCHEMA
    assert "lead.created" in refused.value.detail and "v1, v2" in refused.value.detail


def test_a_non_text_dataschema_is_unsupported_not_a_crash() -> None:
    for bad in (2, ["v1"], {"v": 1}, True):
        with pytest.raises(InvalidEvent) as refused:
            validate_envelope(lead(bad))
        assert refused.value.reason is DeadLetterReason.UNSUPPORTED_SCHEMA


def test_a_v2_payload_is_read_as_v2_and_a_v1_campaign_under_v2_is_an_extra_field() -> None:
    event = validate_envelope(
        lead("v2", campaign=None) | {"data": {"lead_id": "l", "source": "partner", "utm": {"campaign": "c"}}}
    )
    assert isinstance(event.data, LeadCreatedV2) and event.data.utm is not None and event.data.utm.campaign == "c"
    with pytest.raises(InvalidEvent, match="partner"):  # v1 never had it
        validate_envelope(lead("v1", source="partner"))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_valid_older_payload_upcasts_to_a_valid_newer_one(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(sorted(UPCASTERS, key=lambda m: m.__name__)))
    target = UPCASTERS[source][0]
    event_type = TYPE_OF[source]
    payload = data.draw(payload_dicts(source, extra_names=_declared(target)))
    raw = envelope(event_type, "acme", payload, time=datetime(2026, 1, 1, tzinfo=UTC))
    raw["dataschema"] = schema_uri(event_type, MODEL_VERSIONS[source])
    try:
        event = validate_envelope(raw)
    except InvalidEvent:
        assume(False)  # not a valid older payload: nothing to upcast
        raise
    upcast_event = upcast(event, target)
    assert type(upcast_event.data) is target
    sent = {**to_builtins(upcast_event), "dataschema": schema_uri(event_type, MODEL_VERSIONS[target])}
    assert validate_envelope(sent).data == upcast_event.data  # the newer struct's own validation
    schema = orjson.loads((SCHEMAS / event_type.value / f"{MODEL_VERSIONS[target]}.json").read_bytes())
    jsonschema.validate(orjson.loads(orjson.dumps(sent)), schema)  # and its released schema


def _declared(model: type[Payload]) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(model) if f.encode_name]


@pytest.mark.parametrize("campaign", ["spring", "", None])
async def test_a_v1_lead_gives_the_facts_of_the_same_lead_sent_as_v2(campaign: str | None) -> None:
    v1 = lead("v1", campaign=campaign, owner_id="u-1", autopilot=True)
    v2 = {**v1, "dataschema": schema_uri(EventType.LEAD_CREATED, "v2"), "data": {**v1["data"]}}
    del v2["data"]["campaign"]
    if campaign is not None:
        v2["data"]["utm"] = {"campaign": campaign}
    one, two = await _outputs(v1), await _outputs(v2)
    assert one == two and len(one) >= 5  # funnel, first touch, autopilot command, notification, metric


async def _outputs(raw: dict[str, Any]) -> list[Any]:
    result = await dispatch(validate_envelope(raw), DEFAULT_REGISTRY, RetryPolicy(), PipelineMetrics())
    assert not result.failed
    return result.outputs


def older_handler_registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED, name="legacy.reads_campaign", version="v1")
    async def legacy(event: Any) -> None:
        assert isinstance(event.data, LeadCreatedV1)

    @registry.register(EventType.LEAD_CREATED, name="current.reads_utm")
    async def current(event: Any) -> None:
        assert isinstance(event.data, LeadCreatedV2)

    return registry


async def test_each_handler_sees_its_own_version_and_a_newer_record_has_no_path_down() -> None:
    registry = older_handler_registry()
    assert [h.takes for h in registry.handlers_for(EventType.LEAD_CREATED)] == [LeadCreatedV1, LeadCreatedV2]
    result = await dispatch(validate_envelope(lead("v1")), registry, RetryPolicy(), PipelineMetrics())
    assert [r.status for r in result.reports] == ["ok", "ok"]
    v2 = validate_envelope(lead("v2", campaign=None))
    with pytest.raises(InvalidEvent) as refused:
        await dispatch(v2, registry, RetryPolicy(), PipelineMetrics())
    assert refused.value.reason is DeadLetterReason.NO_UPCAST_PATH and refused.value.event_id == str(v2.id)
    assert "legacy.reads_campaign" in refused.value.detail and "LeadCreatedV2 (v2)" in refused.value.detail


async def test_the_worker_dead_letters_a_record_with_no_path_and_goes_on() -> None:
    topics = Topics(prefix="t.")
    processor = EventProcessor(
        registry=older_handler_registry(), metrics=PipelineMetrics(), topics=topics, group="g", max_event_bytes=1 << 20
    )
    records = [
        RecordIn(topics.source(EventType.LEAD_CREATED), 0, n, 0, b"k", orjson.dumps(raw), ())
        for n, raw in enumerate([lead("v2", campaign=None), lead("v3"), lead("v1")])
    ]
    out = await processor.process_batch(records)
    reasons = [dict(o[0].headers).get(DLQ_REASON) for o in out]
    assert reasons == [b"no_upcast_path", b"unsupported_schema", None]
    assert out[2][0].topic == topics.outcomes


def test_a_handler_cannot_declare_a_version_that_does_not_exist() -> None:
    with pytest.raises(ValueError, match="v9"):
        HandlerRegistry().register(EventType.LEAD_CREATED, version="v9")


def test_an_event_at_the_handlers_version_is_not_copied() -> None:
    event = decode_event(orjson.dumps(lead("v2", campaign=None)), max_bytes=1 << 20)
    assert DEFAULT_REGISTRY.views_of(event) is None
    assert upcast(event, LeadCreatedV2) is event
