"""Valid events of every type, as dicts, for tests to bend into shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from salesflow.domain.events import EventType
from salesflow.producer.envelope import envelope

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

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

REQUIRED: dict[EventType, list[str]] = {
    EventType.LEAD_CREATED: ["lead_id", "source"],
    EventType.AUTOPILOT_ACTION_EXECUTED: ["lead_id", "action_id", "action_type", "cost_usd", "outcome"],
    EventType.MESSAGE_SENT: ["lead_id", "message_id", "channel", "queued_at", "sent_at"],
    EventType.SEQUENCE_STEP_EXECUTED: ["lead_id", "sequence_id", "step_index", "action", "status"],
}

ENVELOPE_REQUIRED = ["id", "source", "time", "tenantid", "data"]


def make_event(event_type: EventType, tenant: str = "acme", offset_s: float = 0, **data: Any) -> dict[str, Any]:
    return envelope(
        event_type, tenant, {**PAYLOADS[event_type], **data}, event_id=uuid4(), time=T0 + timedelta(seconds=offset_s)
    )
