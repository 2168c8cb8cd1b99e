"""Typed events for producers: one pydantic class per event type, its fields those of the newest
payload version of that type (``dataschema`` names it: ``urn:salesflow:schema:lead.created:v2``).

A service writes ``LeadCreatedEvent(tenant_id="acme", occurred_at=now, lead_id="l-1", source="web_form")``
and gets an error where the event is made, not a dead letter later: a typo in a field name, a wrong
type, or anything the contract refuses (its limits are checked by the decoder's own validation of
the CloudEvent this event becomes, so they are never stated twice). ``to_cloudevent()`` turns it into
the structured-mode CloudEvent of the contract, with a new UUID as its id unless one is given.

pydantic here, msgspec in the pipeline: this is a service author's API (coercion of ``"api"`` into
``LeadSourceV2.API``, errors that list every field), built once per event a service sends. The fields
mirror the payload structs of ``domain.events``; ``tests/unit/test_outbox_events.py`` holds the two
to the same names, types and defaults.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from salesflow.domain.decoding import validate_envelope
from salesflow.domain.events import (
    MODEL_VERSIONS,
    ActionOutcome,
    AutopilotActionExecutedV1,
    Channel,
    EventType,
    LeadCreatedV2,
    LeadSourceV2,
    MessageSentV1,
    Payload,
    SequenceStepExecutedV1,
    StepStatus,
)
from salesflow.domain.versions import schema_uri
from salesflow.errors import InvalidEvent
from salesflow.producer.envelope import envelope


class EventAttributes(BaseModel):
    """What every producer event carries besides its payload: tenant, time, id."""

    # A typo in a field name is an error here: consumers accept unknown fields (forward compatible), but
    # a typed producer should not send one by accident.
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    event_id: UUID = Field(default_factory=uuid4)


ENVELOPE_FIELDS = frozenset(EventAttributes.model_fields)


class ProducerEvent(EventAttributes):
    """Base of the typed events: a subclass names its type, its payload struct, and the payload's fields."""

    event_type: ClassVar[EventType]
    payload_model: ClassVar[type[Payload]]
    lead_id: str  # every payload has it (domain.events.Payload)

    @model_validator(mode="after")
    def _fits_the_contract(self) -> ProducerEvent:
        # The contract's own limits (lengths, ranges, no NUL, the tenant id's) apply where the event is
        # made, by the same validation the worker runs on the record.
        try:
            validate_envelope(self.to_cloudevent())
        except InvalidEvent as exc:
            raise ValueError(exc.detail) from None
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
        event["dataschema"] = schema_uri(self.event_type, MODEL_VERSIONS[self.payload_model])
        return event

    def encode(self, request_id: str | None = None) -> bytes:
        """The CloudEvent as JSON bytes: the record value."""
        return orjson.dumps(self.to_cloudevent(request_id))


class UtmFields(BaseModel):
    """``utm`` of ``lead.created`` v2: the lead's marketing attribution (UTM parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None


class LeadCreatedEvent(ProducerEvent):
    """``lead.created`` (v2): a lead entered the CRM.

    ``campaign=`` (v1's field) is still taken, as ``utm.campaign``, so that a service written against
    v1 sends v2 unchanged."""

    event_type: ClassVar[EventType] = EventType.LEAD_CREATED
    payload_model: ClassVar[type[Payload]] = LeadCreatedV2
    source: LeadSourceV2
    utm: UtmFields | None = None
    channel: Channel | None = None
    owner_id: str | None = None
    autopilot: bool = False

    @model_validator(mode="before")
    @classmethod
    def _campaign_into_utm(cls, values: Any) -> Any:
        if not isinstance(values, dict) or "campaign" not in values:
            return values
        values = dict(values)
        campaign = values.pop("campaign")
        utm = values.get("utm")
        utm = utm.model_dump() if isinstance(utm, UtmFields) else dict(utm or {})
        if campaign is not None and utm.get("campaign") not in (None, campaign):
            raise ValueError("campaign: given twice, as campaign and as utm.campaign, with different values")
        if campaign is not None:
            values["utm"] = {**utm, "campaign": campaign}
        return values


class AutopilotActionExecutedEvent(ProducerEvent):
    """``autopilot.action_executed``: the AI autopilot acted on a lead."""

    event_type: ClassVar[EventType] = EventType.AUTOPILOT_ACTION_EXECUTED
    payload_model: ClassVar[type[Payload]] = AutopilotActionExecutedV1
    action_id: str
    action_type: str
    model: str | None = None
    cost_usd: float
    tokens: int | None = None
    outcome: ActionOutcome
    value_usd: float | None = None


class MessageSentEvent(ProducerEvent):
    """``message.sent``: a message left for a lead on one channel."""

    event_type: ClassVar[EventType] = EventType.MESSAGE_SENT
    payload_model: ClassVar[type[Payload]] = MessageSentV1
    message_id: str
    channel: Channel
    queued_at: AwareDatetime
    sent_at: AwareDatetime
    sequence_id: str | None = None
    autopilot_action_id: str | None = None


class SequenceStepExecutedEvent(ProducerEvent):
    """``sequence.step_executed``: a marketing sequence ran one step for a lead."""

    event_type: ClassVar[EventType] = EventType.SEQUENCE_STEP_EXECUTED
    payload_model: ClassVar[type[Payload]] = SequenceStepExecutedV1
    sequence_id: str
    step_index: int
    step_count: int | None = None
    action: str
    status: StepStatus


TYPED_EVENTS: dict[EventType, type[ProducerEvent]] = {
    cls.event_type: cls
    for cls in (LeadCreatedEvent, AutopilotActionExecutedEvent, MessageSentEvent, SequenceStepExecutedEvent)
}
