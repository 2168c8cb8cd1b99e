"""Business metrics per event type, returned as observations (bounded labels only, never ids)."""

from __future__ import annotations

from salesflow.domain.events import (
    AutopilotActionExecutedV1,
    CloudEvent,
    EventType,
    LeadCreatedV2,
    MessageSentV1,
    SequenceStepExecutedV1,
)
from salesflow.domain.outputs import Observation, Output
from salesflow.handlers.registry import register_event_handler


@register_event_handler(EventType.LEAD_CREATED)
async def count_lead(event: CloudEvent[LeadCreatedV2]) -> list[Output]:
    return [Observation(metric="leads_created_total", labels=(("source", event.data.source.value),))]


@register_event_handler(EventType.AUTOPILOT_ACTION_EXECUTED)
async def count_ai_action(event: CloudEvent[AutopilotActionExecutedV1]) -> list[Output]:
    action = event.data
    return [
        Observation(metric="autopilot_actions_total", labels=(("outcome", action.outcome.value),)),
        Observation(metric="ai_cost_usd_total", value=action.cost_usd),
        Observation(metric="ai_value_usd_total", value=action.value_usd or 0.0),
    ]


@register_event_handler(EventType.MESSAGE_SENT)
async def count_message(event: CloudEvent[MessageSentV1]) -> list[Output]:
    return [Observation(metric="messages_sent_total", labels=(("channel", event.data.channel.value),))]


@register_event_handler(EventType.SEQUENCE_STEP_EXECUTED)
async def count_sequence_step(event: CloudEvent[SequenceStepExecutedV1]) -> list[Output]:
    return [Observation(metric="sequence_steps_total", labels=(("status", event.data.status.value),))]
