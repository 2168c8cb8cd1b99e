"""Event types and their v1 payloads, and the CloudEvents 1.0 envelope that carries them.

Payloads accept unknown extra fields (forward compatible); a missing or ill-typed required field is an
error. Every field is bounded by what Postgres stores (``limits``: no NUL, maximum lengths, numeric and
time ranges), extra fields included. The JSON Schema files in ``schemas/`` are generated from these models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from salesflow.domain.limits import (
    EXTRA_NAMES_SCHEMA,
    Count,
    ExtraName,
    ExtraValue,
    Id,
    Kind,
    MediaType,
    Money,
    Name,
    PositiveCount,
    RequestId,
    Time,
    UriRef,
    refuse_unstorable_names,
)

# Extra fields are kept, with names and values jsonb can store (``limits``).
OPEN_MODEL = ConfigDict(extra="allow", frozen=True, json_schema_extra={"propertyNames": EXTRA_NAMES_SCHEMA})


class EventType(StrEnum):
    LEAD_CREATED = "lead.created"
    AUTOPILOT_ACTION_EXECUTED = "autopilot.action_executed"
    MESSAGE_SENT = "message.sent"
    SEQUENCE_STEP_EXECUTED = "sequence.step_executed"


class LeadSource(StrEnum):
    MANUAL = "manual"
    ZERO_INPUT = "zero_input"
    IMPORT = "import"
    WEB_FORM = "web_form"
    API = "api"
    REFERRAL = "referral"


class Channel(StrEnum):
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    LINKEDIN = "linkedin"
    SMS = "sms"


class ActionOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class StepStatus(StrEnum):
    EXECUTED = "executed"
    SKIPPED = "skipped"
    FAILED = "failed"


class Payload(BaseModel):
    """Base of every payload: unknown fields are kept, never rejected, as long as jsonb can store them."""

    model_config = OPEN_MODEL
    __pydantic_extra__: dict[ExtraName, ExtraValue] = Field(init=False)  # the type of every extra field's value

    lead_id: Id


class LeadCreatedV1(Payload):
    source: LeadSource
    campaign: Name | None = None
    channel: Channel | None = None
    owner_id: Id | None = None
    autopilot: bool = False


class AutopilotActionExecutedV1(Payload):
    action_id: Id
    action_type: Kind = Field(examples=["send_message", "qualify_lead"])
    model: Name | None = None
    cost_usd: Money
    tokens: Count | None = None
    outcome: ActionOutcome
    value_usd: Money | None = None


class MessageSentV1(Payload):
    message_id: Id
    channel: Channel
    queued_at: Time
    sent_at: Time
    sequence_id: Id | None = None
    autopilot_action_id: Id | None = None


class SequenceStepExecutedV1(Payload):
    sequence_id: Id
    step_index: Count
    step_count: PositiveCount | None = None
    action: Kind = Field(examples=["email", "wait", "task"])
    status: StepStatus


# (type, schema version) -> payload model. A new version is a new row here.
PAYLOAD_MODELS: dict[tuple[EventType, str], type[Payload]] = {
    (EventType.LEAD_CREATED, "v1"): LeadCreatedV1,
    (EventType.AUTOPILOT_ACTION_EXECUTED, "v1"): AutopilotActionExecutedV1,
    (EventType.MESSAGE_SENT, "v1"): MessageSentV1,
    (EventType.SEQUENCE_STEP_EXECUTED, "v1"): SequenceStepExecutedV1,
}

DEFAULT_SCHEMA_VERSION = "v1"

P = TypeVar("P", bound=Payload)


class CloudEvent(BaseModel, Generic[P]):
    """A CloudEvents 1.0 envelope (structured JSON mode) carrying one typed payload."""

    model_config = OPEN_MODEL
    __pydantic_extra__: dict[ExtraName, ExtraValue] = Field(init=False)  # extension attributes, stored in jsonb

    specversion: Literal["1.0"]
    id: UUID
    source: UriRef
    type: EventType
    time: Time
    tenantid: Id
    requestid: RequestId | None = None
    dataschema: UriRef | None = None
    datacontenttype: MediaType | None = None
    data: P

    @model_validator(mode="before")
    @classmethod
    def _storable_names(cls, raw: Any) -> Any:
        # Extra fields' names first, the envelope's and the payload's: an error's path names the field,
        # and a NUL in a name must not travel on in it (to a dead letter's headers). One check per event.
        if isinstance(raw, dict):
            refuse_unstorable_names(raw.keys() - cls.__pydantic_fields__.keys())
            data, payload = raw.get("data"), cls.__pydantic_fields__["data"].annotation
            if isinstance(data, dict) and isinstance(payload, type) and issubclass(payload, Payload):
                refuse_unstorable_names(data.keys() - payload.__pydantic_fields__.keys(), "data: ")
        return raw

    @property
    def tenant_id(self) -> str:
        return self.tenantid

    @property
    def lead_id(self) -> str:
        return self.data.lead_id

    @property
    def key(self) -> str:
        """The Kafka record key: records of one lead stay in order on one partition."""
        return f"{self.tenantid}:{self.data.lead_id}"

    @property
    def schema_version(self) -> str:
        return self.dataschema or DEFAULT_SCHEMA_VERSION


def payload_model(event_type: EventType, schema_version: str) -> type[Payload] | None:
    return PAYLOAD_MODELS.get((event_type, schema_version))
