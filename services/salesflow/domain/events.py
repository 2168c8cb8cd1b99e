"""Event types and their v1 payloads, and the CloudEvents 1.0 envelope that carries them.

Payloads accept unknown extra fields (forward compatible); a missing or ill-typed required field is an
error. The JSON Schema files in ``schemas/`` are generated from these models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeFloat


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


Id = Field(min_length=1, max_length=200)


class Payload(BaseModel):
    """Base of every payload: unknown fields are kept, never rejected."""

    model_config = ConfigDict(extra="allow", frozen=True)

    lead_id: str = Id


class LeadCreatedV1(Payload):
    source: LeadSource
    campaign: str | None = None
    channel: Channel | None = None
    owner_id: str | None = None
    autopilot: bool = False


class AutopilotActionExecutedV1(Payload):
    action_id: str = Id
    action_type: str = Field(min_length=1, max_length=100, examples=["send_message", "qualify_lead"])
    model: str | None = None
    cost_usd: NonNegativeFloat
    tokens: int | None = Field(default=None, ge=0)
    outcome: ActionOutcome
    value_usd: NonNegativeFloat | None = None


class MessageSentV1(Payload):
    message_id: str = Id
    channel: Channel
    queued_at: AwareDatetime
    sent_at: AwareDatetime
    sequence_id: str | None = None
    autopilot_action_id: str | None = None


class SequenceStepExecutedV1(Payload):
    sequence_id: str = Id
    step_index: int = Field(ge=0)
    step_count: int | None = Field(default=None, ge=1)
    action: str = Field(min_length=1, max_length=100, examples=["email", "wait", "task"])
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

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: UUID
    source: str = Field(min_length=1)
    type: EventType
    time: AwareDatetime
    tenantid: str = Field(min_length=1, max_length=200)
    requestid: str | None = None
    dataschema: str | None = None
    datacontenttype: str | None = None
    data: P

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


AnyEvent = CloudEvent[Any]


def payload_model(event_type: EventType, schema_version: str) -> type[Payload] | None:
    return PAYLOAD_MODELS.get((event_type, schema_version))
