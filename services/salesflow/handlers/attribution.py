"""Attribution: first touch of each lead, the channel (and AI action) behind each message, and AI ROI
(cost and attributed value per autopilot action)."""

from __future__ import annotations

from salesflow.domain.events import AutopilotActionExecutedV1, CloudEvent, EventType, LeadCreatedV2, MessageSentV1
from salesflow.domain.outputs import AIActionFact, AttributionTouch, Output
from salesflow.handlers.registry import register_event_handler


@register_event_handler(EventType.LEAD_CREATED)
async def first_touch(event: CloudEvent[LeadCreatedV2]) -> list[Output]:
    lead = event.data
    return [
        AttributionTouch(
            event_id=event.id,
            tenant_id=event.tenantid,
            lead_id=lead.lead_id,
            occurred_at=event.time,
            touch="first_touch",
            source=lead.source.value,
            campaign=None if lead.utm is None else lead.utm.campaign,  # a v1 event's campaign, upcast
            channel=lead.channel,
        )
    ]


@register_event_handler(EventType.MESSAGE_SENT)
async def message_touch(event: CloudEvent[MessageSentV1]) -> list[Output]:
    message = event.data
    return [
        AttributionTouch(
            event_id=event.id,
            tenant_id=event.tenantid,
            lead_id=message.lead_id,
            occurred_at=event.time,
            touch="message",
            channel=message.channel,
            autopilot_action_id=message.autopilot_action_id,
        )
    ]


@register_event_handler(EventType.AUTOPILOT_ACTION_EXECUTED)
async def ai_roi(event: CloudEvent[AutopilotActionExecutedV1]) -> list[Output]:
    action = event.data
    return [
        AIActionFact(
            event_id=event.id,
            tenant_id=event.tenantid,
            lead_id=action.lead_id,
            occurred_at=event.time,
            action_id=action.action_id,
            action_type=action.action_type,
            outcome=action.outcome,
            model=action.model,
            cost_usd=action.cost_usd,
            value_usd=action.value_usd or 0.0,
            tokens=action.tokens,
        )
    ]
