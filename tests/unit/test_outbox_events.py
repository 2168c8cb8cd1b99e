"""Typed producer events: built on the v1 payload models, and turned into the contract's CloudEvent,
which the worker's own decoder accepts as the same event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from pydantic import ValidationError

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType, LeadSource
from salesflow.domain.topics import Topics
from salesflow.domain.versions import latest
from salesflow.outbox import outbox_row
from salesflow.producer import (
    AutopilotActionExecutedEvent,
    LeadCreatedEvent,
    MessageSentEvent,
    ProducerEvent,
    SequenceStepExecutedEvent,
    UtmFields,
)
from salesflow.producer.typed_events import ENVELOPE_FIELDS, TYPED_EVENTS

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def every_type() -> list[ProducerEvent]:
    return [
        LeadCreatedEvent(
            tenant_id="acme", occurred_at=AT, lead_id="l-1", source="partner", utm=UtmFields(campaign="spring")
        ),
        AutopilotActionExecutedEvent(
            tenant_id="acme",
            occurred_at=AT,
            lead_id="l-1",
            action_id="a-1",
            action_type="send_message",
            cost_usd=0.25,
            outcome="succeeded",
            value_usd=2.5,
        ),
        MessageSentEvent(
            tenant_id="acme",
            occurred_at=AT,
            lead_id="l-1",
            message_id="m-1",
            channel="email",
            queued_at=AT - timedelta(seconds=30),
            sent_at=AT,
        ),
        SequenceStepExecutedEvent(
            tenant_id="acme",
            occurred_at=AT,
            lead_id="l-1",
            sequence_id="s-1",
            step_index=0,
            step_count=3,
            action="email",
            status="executed",
        ),
    ]


@pytest.mark.parametrize("event", every_type(), ids=lambda e: e.event_type.value)
def test_each_typed_event_is_the_contracts_cloudevent(event: ProducerEvent) -> None:
    decoded = decode_event(event.encode(request_id="req-7"), max_bytes=256 * 1024)
    assert decoded.id == event.event_id
    assert decoded.type == event.event_type
    assert decoded.tenantid == "acme" and decoded.requestid == "req-7"
    assert decoded.schema_version == latest(event.event_type)  # typed events send the newest version
    assert decoded.time == AT
    assert decoded.key == "acme:l-1" == event.key
    assert decoded.data == msgspec.convert(event.payload(), type(event).payload_model)
    cloud_event = event.to_cloudevent()
    assert cloud_event["specversion"] == "1.0" and cloud_event["source"].startswith("/salesflow/")
    assert "requestid" not in cloud_event


def test_a_new_uuid_per_event_unless_one_is_given() -> None:
    given = uuid4()
    made = [LeadCreatedEvent(tenant_id="acme", lead_id="l", source="api") for _ in range(3)]
    assert len({e.event_id for e in made}) == 3
    assert LeadCreatedEvent(tenant_id="acme", lead_id="l", source="api", event_id=given).event_id == given
    # The id is the idempotency key: encoding twice (a retry) gives the same id.
    event = made[0]
    assert event.to_cloudevent()["id"] == event.to_cloudevent()["id"] == str(event.event_id)


def test_time_is_utc_whatever_the_offset_given() -> None:
    paris = timezone(timedelta(hours=1))
    event = LeadCreatedEvent(
        tenant_id="acme", lead_id="l", source="api", occurred_at=datetime(2026, 1, 1, 13, tzinfo=paris)
    )
    assert event.to_cloudevent()["time"] == "2026-01-01T12:00:00Z"


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({"source": "carrier_pigeon"}, "source"),  # not a lead source
        ({"lead_id": ""}, "lead_id"),  # the payload model's own limit
        ({"lead_id": "l" * 201}, "lead_id"),
        ({"tenant_id": "t" * 201}, "tenantid"),  # the envelope's limit, checked where the event is made
        ({"tenant_id": ""}, "tenantid"),
        ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at"),  # naive: which zone?
        ({"sorce": "api"}, "sorce"),  # a typo is an error, not an unknown extra field
    ],
)
def test_bad_fields_are_refused_where_the_event_is_made(fields: dict[str, Any], wrong: str) -> None:
    values: dict[str, Any] = {"tenant_id": "acme", "lead_id": "l-1", "source": "api", **fields}
    with pytest.raises(ValidationError) as raised:
        LeadCreatedEvent(**values)
    assert wrong in str(raised.value)


def test_required_payload_fields_come_from_the_payload_model() -> None:
    with pytest.raises(ValidationError, match="source"):
        LeadCreatedEvent(tenant_id="acme", lead_id="l-1")  # type: ignore[call-arg] # the point of the test
    with pytest.raises(ValidationError, match="cost_usd"):
        AutopilotActionExecutedEvent(  # type: ignore[call-arg] # the point of the test
            tenant_id="acme", lead_id="l", action_id="a", action_type="t", outcome="failed"
        )
    with pytest.raises(ValidationError, match="cost_usd"):
        AutopilotActionExecutedEvent(
            tenant_id="acme", lead_id="l", action_id="a", action_type="t", outcome="failed", cost_usd=-1
        )


def test_events_are_immutable() -> None:
    event = LeadCreatedEvent(tenant_id="acme", lead_id="l", source=LeadSource.API)
    with pytest.raises(ValidationError):
        event.tenant_id = "globex"  # type: ignore[misc] # frozen: the point of the test


def test_outbox_row_names_the_topic_key_and_content_type() -> None:
    event = every_type()[2]
    row = outbox_row(event, Topics(prefix="t1."), request_id="r")
    assert row.topic == "t1.messages.v1" == Topics(prefix="t1.").source(EventType.MESSAGE_SENT)
    assert row.key == b"acme:l-1"
    assert row.headers == [("content-type", "application/cloudevents+json")]
    assert decode_event(row.value, max_bytes=1 << 20).id == UUID(str(event.event_id))


@pytest.mark.parametrize("event_type", list(TYPED_EVENTS), ids=str)
def test_each_typed_event_has_its_payload_structs_fields_and_defaults(event_type: EventType) -> None:
    """The producer classes mirror the payload structs (pydantic for service authors, msgspec in the
    pipeline): the same fields, the same required ones, the same defaults."""
    cls = TYPED_EVENTS[event_type]
    payload = {f.name: f for f in msgspec.structs.fields(cls.payload_model) if f.encode_name}
    fields = {name: info for name, info in cls.model_fields.items() if name not in ENVELOPE_FIELDS}
    assert set(fields) == set(payload)
    for name, field in payload.items():
        required = field.default is msgspec.NODEFAULT and field.default_factory is msgspec.NODEFAULT
        assert fields[name].is_required() == required, name
        if not required:
            assert fields[name].default == field.default, name


def test_a_v1_style_campaign_is_sent_as_utm_campaign() -> None:
    """A service written against v1 (``campaign=``) sends v2 unchanged; both at once must agree."""
    event = LeadCreatedEvent(tenant_id="acme", lead_id="l", source="api", campaign="spring")  # type: ignore[call-arg]
    assert event.payload()["utm"] == {"campaign": "spring"} and "campaign" not in event.payload()
    with pytest.raises(ValidationError, match="twice"):
        LeadCreatedEvent(  # type: ignore[call-arg] # the point of the test
            tenant_id="acme", lead_id="l", source="api", campaign="a", utm=UtmFields(campaign="b")
        )
