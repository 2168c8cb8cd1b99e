"""Each handler's outputs, computed from one event."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import PAYLOAD_MODELS, CloudEvent, EventType
from salesflow.domain.outputs import (
    AIActionFact,
    AttributionTouch,
    AutopilotCommand,
    FunnelFact,
    MessageFact,
    NotificationRequest,
    Observation,
    SequenceStepFact,
    derived_id,
)
from salesflow.domain.upcasting import upcast
from salesflow.domain.versions import latest
from salesflow.handlers import analytics, attribution, commands, metrics, slo
from salesflow.testing.factories import event_dict


def event(event_type: EventType, **data: Any) -> CloudEvent[Any]:
    """The event as its handlers take it: upcast to the newest version (the factory's are v1)."""
    decoded = decode_event(orjson.dumps(event_dict(event_type, **data)), max_bytes=1 << 20)
    return upcast(decoded, PAYLOAD_MODELS[(event_type, latest(event_type))])


async def test_lead_created_funnel_and_first_touch() -> None:
    lead = event(EventType.LEAD_CREATED, source="referral", campaign="q4", channel="linkedin")
    [funnel] = await analytics.lead_funnel(lead)
    assert isinstance(funnel, FunnelFact) and funnel.stage == "created" and funnel.event_id == lead.id
    [touch] = await attribution.first_touch(lead)
    assert isinstance(touch, AttributionTouch)
    assert (touch.touch, touch.source, touch.campaign, touch.channel) == ("first_touch", "referral", "q4", "linkedin")


async def test_autopilot_command_only_when_autopilot_is_on_with_a_stable_id() -> None:
    on = event(EventType.LEAD_CREATED, autopilot=True)
    [command] = await commands.trigger_autopilot(on)
    [again] = await commands.trigger_autopilot(on)
    assert isinstance(command, AutopilotCommand) and isinstance(again, AutopilotCommand)
    assert command.command_id == derived_id(on.id, "start_autopilot") == again.command_id
    assert command.causation_id == on.id
    assert await commands.trigger_autopilot(event(EventType.LEAD_CREATED, autopilot=False)) == []


async def test_owner_is_notified_when_there_is_one() -> None:
    [note] = await commands.notify_owner(event(EventType.LEAD_CREATED, owner_id="user-9"))
    assert isinstance(note, NotificationRequest) and note.recipient_id == "user-9"
    assert await commands.notify_owner(event(EventType.LEAD_CREATED, owner_id=None)) == []


async def test_ai_roi_fact_carries_cost_and_value() -> None:
    action = event(EventType.AUTOPILOT_ACTION_EXECUTED, cost_usd=0.4, value_usd=None, outcome="failed")
    [fact] = await attribution.ai_roi(action)
    assert isinstance(fact, AIActionFact)
    assert (fact.cost_usd, fact.value_usd, fact.outcome.value) == (0.4, 0.0, "failed")


async def test_message_latency_is_sent_minus_queued_and_never_negative() -> None:
    message = event(EventType.MESSAGE_SENT, queued_at="2026-11-24T12:00:00Z", sent_at="2026-11-24T12:01:30Z")
    fact, observation = await slo.message_latency(message)
    assert isinstance(fact, MessageFact) and fact.latency_seconds == 90.0
    assert observation == Observation(
        metric="message_processing_latency_seconds", value=90.0, labels=(("channel", "whatsapp"),)
    )
    skewed = event(EventType.MESSAGE_SENT, queued_at="2026-11-24T12:00:05Z", sent_at="2026-11-24T12:00:00Z")
    skewed_fact = (await slo.message_latency(skewed))[0]
    assert isinstance(skewed_fact, MessageFact) and skewed_fact.latency_seconds == 0.0


async def test_message_counts_as_contacted_and_an_attribution_touch() -> None:
    message = event(EventType.MESSAGE_SENT, autopilot_action_id="act-7", channel="sms")
    [funnel] = await analytics.contacted_funnel(message)
    assert isinstance(funnel, FunnelFact) and funnel.stage == "contacted"
    [touch] = await attribution.message_touch(message)
    assert isinstance(touch, AttributionTouch) and touch.channel is not None
    assert (touch.touch, touch.channel.value, touch.autopilot_action_id) == ("message", "sms", "act-7")


@pytest.mark.parametrize(
    ("step_index", "step_count", "status", "stages"),
    [
        (0, 3, "executed", ["in_sequence"]),
        (2, 3, "executed", ["in_sequence", "sequence_completed"]),
        (2, 3, "skipped", ["in_sequence", "sequence_completed"]),
        (2, 3, "failed", ["in_sequence"]),
        (4, None, "executed", ["in_sequence"]),
    ],
)
async def test_sequence_progress_completes_on_the_last_step(
    step_index: int, step_count: int | None, status: str, stages: list[str]
) -> None:
    step = event(EventType.SEQUENCE_STEP_EXECUTED, step_index=step_index, step_count=step_count, status=status)
    outputs = await analytics.sequence_progress(step)
    [fact] = [o for o in outputs if isinstance(o, SequenceStepFact)]
    assert fact.completed == ("sequence_completed" in stages)
    assert [o.stage for o in outputs if isinstance(o, FunnelFact)] == stages


async def test_metrics_handlers_observe_bounded_labels_only() -> None:
    outputs = [
        *await metrics.count_lead(event(EventType.LEAD_CREATED)),
        *await metrics.count_ai_action(event(EventType.AUTOPILOT_ACTION_EXECUTED, cost_usd=0.3, value_usd=9.0)),
        *await metrics.count_message(event(EventType.MESSAGE_SENT)),
        *await metrics.count_sequence_step(event(EventType.SEQUENCE_STEP_EXECUTED)),
    ]
    observations = [o for o in outputs if isinstance(o, Observation)]
    assert observations == outputs  # the metrics handlers return observations only
    by_metric = {o.metric: o for o in observations}
    assert by_metric["ai_cost_usd_total"].value == 0.3 and by_metric["ai_value_usd_total"].value == 9.0
    assert {name for o in observations for name, _ in o.labels} <= {"source", "outcome", "channel", "status"}
