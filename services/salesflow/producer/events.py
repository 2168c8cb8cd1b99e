"""Typed events for producers: one class per event type, built on the v1 payload models.

A service writes ``LeadCreatedEvent(tenant_id="acme", occurred_at=now, lead_id="l-1", source="web_form")``
and gets the payload model's validation (its fields and limits are inherited, never declared twice);
``to_cloudevent()`` turns it into the structured-mode CloudEvent of the contract, with a new UUID as
its id unless one is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid4

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from salesflow.domain.events import (
    DEFAULT_SCHEMA_VERSION,
    AutopilotActionExecutedV1,
    CloudEvent,
    EventType,
    LeadCreatedV1,
    MessageSentV1,
    Payload,
    SequenceStepExecutedV1,
)
from salesflow.producer.envelope import envelope


class EventAttributes(BaseModel):
    """What every producer event carries besides its payload: tenant, time, id."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    event_id: UUID = Field(default_factory=uuid4)


ENVELOPE_FIELDS = frozenset(EventAttributes.model_fields)
# A typo in a field name is an error here: consumers accept unknown fields (forward compatible), but a
# typed producer should not send one by accident. Set on each event class: the payload model's
# extra="allow" would win over a base class's setting.
PRODUCER_CONFIG = ConfigDict(extra="forbid", frozen=True)


class ProducerEvent(EventAttributes):
    """Base of the typed events: a subclass names its type and inherits its payload model's fields."""

    event_type: ClassVar[EventType]
    payload_model: ClassVar[type[Payload]]
    if TYPE_CHECKING:
        lead_id: str  # every payload model has it (domain.events.Payload)

    @model_validator(mode="after")
    def _fits_the_contract(self) -> ProducerEvent:
        # The envelope's own limits (tenant id length, ...) apply where the event is made, not later.
        CloudEvent[self.payload_model].model_validate(self.to_cloudevent())  # type: ignore[name-defined] # runtime type
        return self

    def payload(self) -> dict[str, Any]:
        """The ``data`` of the CloudEvent: the payload fields, as JSON values (unset optionals left out)."""
        return self.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS), exclude_none=True)

    @property
    def key(self) -> str:
        """The Kafka record key: ``<tenant>:<lead>``, so a lead's records stay in order."""
        return f"{self.tenant_id}:{self.lead_id}"

    def to_cloudevent(self, request_id: str | None = None) -> dict[str, Any]:
        """The structured-mode CloudEvent of the contract, as a JSON-ready dict."""
        event = envelope(
            self.event_type,
            self.tenant_id,
            self.payload(),
            event_id=self.event_id,
            time=self.occurred_at.astimezone(UTC),
            request_id=request_id,
        )
        event["dataschema"] = DEFAULT_SCHEMA_VERSION
        return event

    def encode(self, request_id: str | None = None) -> bytes:
        """The CloudEvent as JSON bytes: the record value."""
        return orjson.dumps(self.to_cloudevent(request_id))


class LeadCreatedEvent(ProducerEvent, LeadCreatedV1):
    """``lead.created``: a lead entered the CRM."""

    model_config = PRODUCER_CONFIG
    event_type: ClassVar[EventType] = EventType.LEAD_CREATED
    payload_model: ClassVar[type[Payload]] = LeadCreatedV1


class AutopilotActionExecutedEvent(ProducerEvent, AutopilotActionExecutedV1):
    """``autopilot.action_executed``: the AI autopilot acted on a lead."""

    model_config = PRODUCER_CONFIG
    event_type: ClassVar[EventType] = EventType.AUTOPILOT_ACTION_EXECUTED
    payload_model: ClassVar[type[Payload]] = AutopilotActionExecutedV1


class MessageSentEvent(ProducerEvent, MessageSentV1):
    """``message.sent``: a message left for a lead on one channel."""

    model_config = PRODUCER_CONFIG
    event_type: ClassVar[EventType] = EventType.MESSAGE_SENT
    payload_model: ClassVar[type[Payload]] = MessageSentV1


class SequenceStepExecutedEvent(ProducerEvent, SequenceStepExecutedV1):
    """``sequence.step_executed``: a marketing sequence ran one step for a lead."""

    model_config = PRODUCER_CONFIG
    event_type: ClassVar[EventType] = EventType.SEQUENCE_STEP_EXECUTED
    payload_model: ClassVar[type[Payload]] = SequenceStepExecutedV1


TYPED_EVENTS: dict[EventType, type[ProducerEvent]] = {
    cls.event_type: cls
    for cls in (LeadCreatedEvent, AutopilotActionExecutedEvent, MessageSentEvent, SequenceStepExecutedEvent)
}
