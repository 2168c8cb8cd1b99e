"""Commands to other services: start the autopilot on a new lead, notify the lead's owner."""

from __future__ import annotations

from salesflow.domain.events import CloudEvent, EventType, LeadCreatedV2
from salesflow.domain.outputs import AutopilotCommand, NotificationRequest, Output, derived_id
from salesflow.handlers.registry import register_event_handler


@register_event_handler(EventType.LEAD_CREATED)
async def trigger_autopilot(event: CloudEvent[LeadCreatedV2]) -> list[Output]:
    if not event.data.autopilot:
        return []
    return [
        AutopilotCommand(
            command_id=derived_id(event.id, "start_autopilot"),
            causation_id=event.id,
            tenant_id=event.tenantid,
            lead_id=event.lead_id,
            requested_at=event.time,
        )
    ]


@register_event_handler(EventType.LEAD_CREATED)
async def notify_owner(event: CloudEvent[LeadCreatedV2]) -> list[Output]:
    if event.data.owner_id is None:
        return []
    return [
        NotificationRequest(
            command_id=derived_id(event.id, "notify_owner"),
            causation_id=event.id,
            tenant_id=event.tenantid,
            lead_id=event.lead_id,
            requested_at=event.time,
            recipient_id=event.data.owner_id,
        )
    ]
