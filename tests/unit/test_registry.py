from __future__ import annotations

from typing import Any

import pytest

from salesflow.domain.events import CloudEvent, EventType
from salesflow.domain.outputs import Output
from salesflow.handlers import DEFAULT_REGISTRY, HandlerRegistry


def test_the_default_registry_covers_every_type_with_the_briefs_handlers() -> None:
    table = DEFAULT_REGISTRY.table()
    assert table[EventType.LEAD_CREATED] == [
        "analytics.lead_funnel",
        "attribution.first_touch",
        "commands.trigger_autopilot",
        "commands.notify_owner",
        "metrics.count_lead",
    ]
    assert table[EventType.AUTOPILOT_ACTION_EXECUTED] == ["attribution.ai_roi", "metrics.count_ai_action"]
    assert table[EventType.MESSAGE_SENT] == [
        "analytics.contacted_funnel",
        "attribution.message_touch",
        "metrics.count_message",
        "slo.message_latency",
    ]
    assert table[EventType.SEQUENCE_STEP_EXECUTED] == ["analytics.sequence_progress", "metrics.count_sequence_step"]


def test_a_new_registry_keeps_order_and_refuses_a_duplicate_name() -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.MESSAGE_SENT)
    async def first(event: CloudEvent[Any]) -> list[Output]:
        return []

    @registry.register(EventType.MESSAGE_SENT, name="second")
    async def other(event: CloudEvent[Any]) -> list[Output]:
        return []

    assert [h.name for h in registry.handlers_for(EventType.MESSAGE_SENT)] == ["test_registry.first", "second"]
    assert registry.handlers_for(EventType.LEAD_CREATED) == ()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(EventType.MESSAGE_SENT, name="second")(other)
