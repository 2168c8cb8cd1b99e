"""Event types and their payloads (every released version), and the CloudEvents 1.0 envelope that carries them.

msgspec structs (frozen): decoded and validated in C, read by handlers as attributes. Payloads accept
unknown extra fields (forward compatible); a missing or ill-typed required field is an error. Every
field is bounded by what Postgres stores (``limits``: no NUL, maximum lengths, numeric and time
ranges), extra fields included. The JSON Schema files in ``schemas/`` are generated from these structs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar
from uuid import UUID

import msgspec

from salesflow.domain.limits import (
    Count,
    Id,
    Kind,
    MediaType,
    Money,
    Name,
    PositiveCount,
    RequestId,
    Time,
    UriRef,
    check_times,
)


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


class LeadSourceV2(StrEnum):
    """``lead.created`` v2's sources: v1's (``LeadSource``, released and so never changed) and
    ``partner``."""

    MANUAL = "manual"
    ZERO_INPUT = "zero_input"
    IMPORT = "import"
    WEB_FORM = "web_form"
    API = "api"
    REFERRAL = "referral"
    PARTNER = "partner"


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


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every payload: unknown fields are kept in ``extra`` (never rejected, as long as jsonb can
    store them). ``extra`` is not a member of the JSON: its encoded name, the empty string, is one no
    field of a valid event can have (``limits``: names of 1 to 200 characters)."""

    time_fields: ClassVar[tuple[str, ...]] = ()

    lead_id: Id
    extra: dict[str, Any] = msgspec.field(default_factory=dict, name="")

    def __post_init__(self) -> None:
        check_times(self, self.time_fields)


class LeadCreatedV1(Payload, frozen=True, kw_only=True):
    source: LeadSource
    campaign: Name | None = None
    channel: Channel | None = None
    owner_id: Id | None = None
    autopilot: bool = False


class Utm(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Marketing attribution of a lead (UTM parameters). Closed: a member of its own is a new version."""

    source: Name | None = None
    medium: Name | None = None
    campaign: Name | None = None


class LeadCreatedV2(Payload, frozen=True, kw_only=True):
    """v2: ``campaign`` moved into ``utm`` (with ``source`` and ``medium``); ``source`` may be
    ``partner``. ``domain.upcasting`` turns a v1 payload into this."""

    source: LeadSourceV2
    utm: Utm | None = None
    channel: Channel | None = None
    owner_id: Id | None = None
    autopilot: bool = False


class AutopilotActionExecutedV1(Payload, frozen=True, kw_only=True):
    action_id: Id
    action_type: Annotated[Kind, msgspec.Meta(examples=["send_message", "qualify_lead"])]
    model: Name | None = None
    cost_usd: Money
    tokens: Count | None = None
    outcome: ActionOutcome
    value_usd: Money | None = None


class MessageSentV1(Payload, frozen=True, kw_only=True):
    time_fields: ClassVar[tuple[str, ...]] = ("queued_at", "sent_at")

    message_id: Id
    channel: Channel
    queued_at: Time
    sent_at: Time
    sequence_id: Id | None = None
    autopilot_action_id: Id | None = None


class SequenceStepExecutedV1(Payload, frozen=True, kw_only=True):
    sequence_id: Id
    step_index: Count
    step_count: PositiveCount | None = None
    action: Annotated[Kind, msgspec.Meta(examples=["email", "wait", "task"])]
    status: StepStatus


# (type, schema version) -> payload model. A new version is a new row here.
PAYLOAD_MODELS: dict[tuple[EventType, str], type[Payload]] = {
    (EventType.LEAD_CREATED, "v1"): LeadCreatedV1,
    (EventType.LEAD_CREATED, "v2"): LeadCreatedV2,
    (EventType.AUTOPILOT_ACTION_EXECUTED, "v1"): AutopilotActionExecutedV1,
    (EventType.MESSAGE_SENT, "v1"): MessageSentV1,
    (EventType.SEQUENCE_STEP_EXECUTED, "v1"): SequenceStepExecutedV1,
}

DEFAULT_SCHEMA_VERSION = "v1"
# payload model -> its version: what an event's payload is, read without parsing ``dataschema`` again
MODEL_VERSIONS: dict[type[Payload], str] = {model: version for (_, version), model in PAYLOAD_MODELS.items()}

P = TypeVar("P", bound=Payload)


class CloudEvent(msgspec.Struct, Generic[P], frozen=True, kw_only=True):
    """A CloudEvents 1.0 envelope (structured JSON mode) carrying one typed payload.

    Extension attributes (``traceparent``, ...) are kept in ``extensions``, which, like a payload's
    ``extra``, is not a member of the JSON itself. Built by ``domain.decoding`` from a record; a struct
    made in Python is not validated (the test kit's factories go through the decoder)."""

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
    extensions: dict[str, Any] = msgspec.field(default_factory=dict, name="")

    def __post_init__(self) -> None:
        check_times(self, ("time",))

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
        """The payload's version (``v2``), whatever form ``dataschema`` had (a URI or bare)."""
        return MODEL_VERSIONS[type(self.data)]


def to_builtins(event: CloudEvent[Any]) -> dict[str, Any]:
    """The event as the JSON object it was sent as: its members, with the extension attributes and the
    payload's extra fields among them (not under ``extensions`` / ``extra``)."""
    raw: dict[str, Any] = msgspec.to_builtins(event)
    raw.update(raw.pop("", {}))
    raw["data"].update(raw["data"].pop("", {}))
    return raw


def payload_model(event_type: EventType, schema_version: str) -> type[Payload] | None:
    return PAYLOAD_MODELS.get((event_type, schema_version))
