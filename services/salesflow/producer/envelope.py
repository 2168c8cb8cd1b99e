"""Build CloudEvents envelopes the way an upstream service would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson

from salesflow.domain.events import EventType

SOURCES: dict[EventType, str] = {
    EventType.LEAD_CREATED: "/salesflow/leads",
    EventType.AUTOPILOT_ACTION_EXECUTED: "/salesflow/autopilot",
    EventType.MESSAGE_SENT: "/salesflow/messaging",
    EventType.SEQUENCE_STEP_EXECUTED: "/salesflow/sequences",
}


def envelope(
    event_type: EventType,
    tenant_id: str,
    data: dict[str, Any],
    *,
    event_id: UUID | None = None,
    time: datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A structured-mode CloudEvent as a JSON-ready dict."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event_id or uuid4()),
        "source": SOURCES[event_type],
        "type": event_type.value,
        "time": (time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "tenantid": tenant_id,
        "datacontenttype": "application/json",
        "data": data,
    }
    if request_id:
        event["requestid"] = request_id
    return event


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def record_key(event: dict[str, Any]) -> bytes:
    return f"{event['tenantid']}:{event['data']['lead_id']}".encode()
