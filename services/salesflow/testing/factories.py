"""Valid events of every type, with overrides: ``lead_created(lead_id="l-9", tenantid="acme")``.

Overrides name an envelope attribute (``id``, ``tenantid``, ``time``, ``requestid``, ``dataschema``)
or a payload field (``lead_id``, ``channel``, ...); the result is validated exactly as the worker
validates a record, so an override the contract refuses raises ``InvalidEvent``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from salesflow.domain.decoding import validate_envelope
from salesflow.domain.events import (
    AutopilotActionExecutedV1,
    CloudEvent,
    EventType,
    LeadCreatedV1,
    MessageSentV1,
    SequenceStepExecutedV1,
)
from salesflow.producer.envelope import envelope

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# `source` is left to the payload (a lead's source); the envelope's is the emitting service, per type.
ENVELOPE_FIELDS = frozenset({"id", "tenantid", "time", "requestid", "dataschema", "datacontenttype"})

PAYLOADS: dict[EventType, dict[str, Any]] = {
    EventType.LEAD_CREATED: {
        "lead_id": "lead-1",
        "source": "web_form",
        "campaign": "spring",
        "channel": "email",
        "owner_id": "user-1",
        "autopilot": True,
    },
    EventType.AUTOPILOT_ACTION_EXECUTED: {
        "lead_id": "lead-1",
        "action_id": "act-1",
        "action_type": "send_message",
        "model": "m",
        "cost_usd": 0.02,
        "tokens": 900,
        "outcome": "succeeded",
        "value_usd": 40.0,
    },
    EventType.MESSAGE_SENT: {
        "lead_id": "lead-1",
        "message_id": "msg-1",
        "channel": "whatsapp",
        "queued_at": "2026-11-24T11:59:30Z",
        "sent_at": "2026-11-24T12:00:00Z",
        "sequence_id": "seq-1",
        "autopilot_action_id": "act-1",
    },
    EventType.SEQUENCE_STEP_EXECUTED: {
        "lead_id": "lead-1",
        "sequence_id": "seq-1",
        "step_index": 2,
        "step_count": 3,
        "action": "email",
        "status": "executed",
    },
}


def event_dict(event_type: EventType, tenant: str = "acme", offset_s: float = 0, **overrides: Any) -> dict[str, Any]:
    """The event as the JSON object a producer sends (for tests that publish it): of ``tenant``, at
    ``offset_s`` seconds after ``T0``, unless the overrides name ``tenantid`` or ``time``."""
    attributes = {k: v for k, v in overrides.items() if k in ENVELOPE_FIELDS}
    data = {**PAYLOADS[event_type], **{k: v for k, v in overrides.items() if k not in ENVELOPE_FIELDS}}
    tenant = str(attributes.pop("tenantid", tenant))
    raw = envelope(event_type, tenant, data, event_id=uuid4(), time=T0 + timedelta(seconds=offset_s))
    for name, value in attributes.items():
        raw[name] = (
            str(value) if isinstance(value, UUID) else value.isoformat() if isinstance(value, datetime) else value
        )
    return raw


def make_event(event_type: EventType, **overrides: Any) -> CloudEvent[Any]:
    """A validated event of ``event_type`` (a fresh id each call) with ``overrides`` applied."""
    return validate_envelope(event_dict(event_type, **overrides))


def lead_created(**overrides: Any) -> CloudEvent[LeadCreatedV1]:
    return make_event(EventType.LEAD_CREATED, **overrides)


def autopilot_action_executed(**overrides: Any) -> CloudEvent[AutopilotActionExecutedV1]:
    return make_event(EventType.AUTOPILOT_ACTION_EXECUTED, **overrides)


def message_sent(**overrides: Any) -> CloudEvent[MessageSentV1]:
    return make_event(EventType.MESSAGE_SENT, **overrides)


def sequence_step_executed(**overrides: Any) -> CloudEvent[SequenceStepExecutedV1]:
    return make_event(EventType.SEQUENCE_STEP_EXECUTED, **overrides)
