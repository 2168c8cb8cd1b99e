"""SLO: message processing latency, ``sent_at - queued_at``, per channel (target: 99% within 60 s)."""

from __future__ import annotations

from salesflow.domain.events import CloudEvent, EventType, MessageSentV1
from salesflow.domain.outputs import MessageFact, Observation, Output
from salesflow.handlers.registry import register_event_handler


@register_event_handler(EventType.MESSAGE_SENT)
async def message_latency(event: CloudEvent[MessageSentV1]) -> list[Output]:
    message = event.data
    # A clock skew between queue and sender can make this negative; the SLI counts it as 0, not an error.
    latency = max((message.sent_at - message.queued_at).total_seconds(), 0.0)
    return [
        MessageFact(
            event_id=event.id,
            tenant_id=event.tenantid,
            lead_id=message.lead_id,
            occurred_at=event.time,
            message_id=message.message_id,
            channel=message.channel,
            queued_at=message.queued_at,
            sent_at=message.sent_at,
            latency_seconds=latency,
            sequence_id=message.sequence_id,
            autopilot_action_id=message.autopilot_action_id,
        ),
        Observation(
            metric="message_processing_latency_seconds", value=latency, labels=(("channel", message.channel.value),)
        ),
    ]
