from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.domain.events import CloudEvent, EventType, MessageSentV1
from salesflow.domain.outputs import Output
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.handlers.signature import HandlerDependencyError, analyse
from salesflow.metrics import PipelineMetrics
from salesflow.processor.dispatch import dispatch
from salesflow.settings import Settings
from salesflow.testing import lead_created

Event = CloudEvent[Any]  # the CRM team's guide calls the event type `Event`


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


# Dependencies by parameter (handlers.signature): read once, at registration.


def test_the_seed_style_signature_is_accepted_as_written() -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED)
    async def my_custom_handler(db: AsyncSession, event: Event) -> None:
        return None

    (handler,) = registry.handlers_for(EventType.LEAD_CREATED)
    assert handler.signature.params == (("db", "db"), ("event", "event"))
    assert not handler.signature.pure and handler.signature.takes_db
    assert handler.on_replay == "skip"  # the default for a handler with database effects
    assert handler.origin == f"module {__name__}"


def test_dependencies_are_matched_by_name_or_by_type() -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.MESSAGE_SENT, on_replay="recompute")
    async def alert(
        e: CloudEvent[MessageSentV1],
        conf: Settings,
        client: httpx.AsyncClient,
        log: logging.Logger,
        session: AsyncSession,
    ) -> list[Output]:
        return []

    (handler,) = registry.handlers_for(EventType.MESSAGE_SENT)
    assert handler.signature.params == (
        ("e", "event"),
        ("conf", "settings"),
        ("client", "http"),
        ("log", "logger"),
        ("session", "db"),
    )
    assert handler.on_replay == "recompute"


def test_the_built_in_handlers_are_pure_and_run_without_an_invoker() -> None:
    handlers = DEFAULT_REGISTRY.all()
    assert handlers and all(h.signature.pure and h.invoke is None and h.origin == "built-in" for h in handlers)


def test_an_unknown_dependency_is_refused_at_registration_in_one_line_naming_handler_and_parameter() -> None:
    registry = HandlerRegistry()

    async def needs_a_crm(event: CloudEvent[Any], crm_client: int) -> None:
        return None

    with pytest.raises(HandlerDependencyError) as refused:
        registry.register(EventType.LEAD_CREATED, name="crm.sync")(needs_a_crm)
    message = str(refused.value)
    assert "\n" not in message
    assert "'crm.sync'" in message and "'crm_client'" in message and "(int)" in message
    assert registry.handlers_for(EventType.LEAD_CREATED) == ()  # nothing half-registered


@pytest.mark.parametrize(
    "source",
    [
        "async def h(event, *args): return []",
        "async def h(event, **kwargs): return []",
        "def h(event): return []",
        "async def h(db: 'Settings'): return []",
    ],
)
def test_signatures_that_cannot_be_injected_are_refused(source: str) -> None:
    scope: dict[str, Any] = {}
    exec(source, scope)
    with pytest.raises(HandlerDependencyError, match="handler 'h'"):
        HandlerRegistry().register(EventType.LEAD_CREATED, name="h")(scope["h"])


def test_a_parameter_with_a_default_is_left_to_its_default() -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED, name="h")
    async def h(event: CloudEvent[Any], threshold: int = 3) -> list[Output]:
        return []

    assert registry.handlers_for(EventType.LEAD_CREATED)[0].signature.pure


def test_annotations_only_known_to_type_checkers_still_resolve_by_name() -> None:
    scope: dict[str, Any] = {}
    exec("async def h(event: 'Unknown', db: 'NotImported'): return []", scope)
    handler_sig = analyse(scope["h"], "h")
    assert handler_sig.params == (("event", "event"), ("db", "db"))


def test_on_replay_takes_two_values() -> None:
    with pytest.raises(ValueError, match="on_replay"):
        HandlerRegistry().register(EventType.LEAD_CREATED, on_replay="sometimes")  # type: ignore[arg-type]  # the wrong value is the point


async def test_an_unbound_handler_with_dependencies_fails_with_a_clear_error() -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED, name="needs_logger")
    async def needs_logger(event: CloudEvent[Any], logger: logging.Logger) -> None:
        return None

    result = await dispatch(lead_created(), registry, RetryPolicy(max_attempts=1), PipelineMetrics())
    assert result.failed and "not bound" in (result.error_message or "")
