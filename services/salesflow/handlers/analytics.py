"""Analytics: the sales funnel and sequence progress, as facts keyed by the event."""

from __future__ import annotations

from salesflow.domain.events import (
    CloudEvent,
    EventType,
    LeadCreatedV2,
    MessageSentV1,
    P,
    SequenceStepExecutedV1,
    StepStatus,
)
from salesflow.domain.outputs import FunnelFact, FunnelStage, Output, SequenceStepFact
from salesflow.handlers.registry import register_event_handler


def _funnel(event: CloudEvent[P], stage: FunnelStage) -> FunnelFact:
    return FunnelFact(
        event_id=event.id, tenant_id=event.tenantid, lead_id=event.lead_id, occurred_at=event.time, stage=stage
    )


@register_event_handler(EventType.LEAD_CREATED)
async def lead_funnel(event: CloudEvent[LeadCreatedV2]) -> list[Output]:
    return [_funnel(event, "created")]


@register_event_handler(EventType.MESSAGE_SENT)
async def contacted_funnel(event: CloudEvent[MessageSentV1]) -> list[Output]:
    return [_funnel(event, "contacted")]


def completes_sequence(step: SequenceStepExecutedV1) -> bool:
    """The last step of a known-length sequence, executed or skipped, completes it."""
    return (
        step.step_count is not None and step.step_index >= step.step_count - 1 and step.status is not StepStatus.FAILED
    )


@register_event_handler(EventType.SEQUENCE_STEP_EXECUTED)
async def sequence_progress(event: CloudEvent[SequenceStepExecutedV1]) -> list[Output]:
    step = event.data
    completed = completes_sequence(step)
    outputs: list[Output] = [
        SequenceStepFact(
            event_id=event.id,
            tenant_id=event.tenantid,
            lead_id=step.lead_id,
            occurred_at=event.time,
            sequence_id=step.sequence_id,
            step_index=step.step_index,
            step_count=step.step_count,
            action=step.action,
            status=step.status,
            completed=completed,
        ),
        _funnel(event, "in_sequence"),
    ]
    if completed:
        outputs.append(_funnel(event, "sequence_completed"))
    return outputs
