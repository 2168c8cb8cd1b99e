"""The handler registry: which functions run for each event type.

Handlers are plain ``async def handler(event) -> list[Output]`` functions. ``@register_event_handler``
feeds the default registry; ``salesflow handlers`` prints it; tests build their own ``HandlerRegistry``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from salesflow.domain.events import CloudEvent, EventType
from salesflow.domain.outputs import Output

HandlerFn = Callable[[CloudEvent[Any]], Awaitable[Sequence[Output]]]


@dataclass(frozen=True)
class RegisteredHandler:
    name: str
    event_type: EventType
    fn: HandlerFn


class HandlerRegistry:
    """Handlers per event type, in registration order; every one of them runs for each event."""

    def __init__(self) -> None:
        self._by_type: dict[EventType, list[RegisteredHandler]] = {t: [] for t in EventType}

    def register(self, event_type: EventType, *, name: str | None = None) -> Callable[[HandlerFn], HandlerFn]:
        def decorate(fn: HandlerFn) -> HandlerFn:
            handler_name = name or f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
            if any(h.name == handler_name for h in self._by_type[event_type]):
                raise ValueError(f"handler {handler_name!r} is already registered for {event_type}")
            self._by_type[event_type].append(RegisteredHandler(handler_name, event_type, fn))
            return fn

        return decorate

    def handlers_for(self, event_type: EventType) -> tuple[RegisteredHandler, ...]:
        return tuple(self._by_type[event_type])

    def table(self) -> dict[EventType, list[str]]:
        """What runs for each event type, by handler name."""
        return {t: [h.name for h in hs] for t, hs in self._by_type.items()}


DEFAULT_REGISTRY = HandlerRegistry()


def register_event_handler(event_type: EventType, *, name: str | None = None) -> Callable[[HandlerFn], HandlerFn]:
    """Register a handler for ``event_type`` in the default registry."""
    return DEFAULT_REGISTRY.register(event_type, name=name)
