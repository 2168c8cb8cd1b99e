"""The handler registry: which functions run for each event type, where each came from, what it needs.

A handler is an ``async def`` function of the event and, optionally, injected dependencies (see
``handlers.signature``); it returns its outputs (facts, commands, observations) or nothing.
``@register_event_handler`` feeds the default registry; ``salesflow handlers`` prints it; tests build
their own ``HandlerRegistry``. The composition root binds a registry to the process's resources
(``handlers.injection.bind``) before the worker starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from salesflow.domain.events import PAYLOAD_MODELS, CloudEvent, EventType, Payload
from salesflow.domain.outputs import Output
from salesflow.domain.upcasting import NoUpcastPath, chain, upcast
from salesflow.domain.versions import latest
from salesflow.errors import DeadLetterReason, InvalidEvent
from salesflow.handlers.signature import PURE, HandlerSignature, OnReplay, analyse

HandlerFn = Callable[..., Awaitable[Sequence[Output] | None]]
# The decorators hand back the function as it was, so a handler keeps its own precise type.
H = TypeVar("H", bound=HandlerFn)
# A bound handler with dependencies: (event, replay) -> (its outputs, whether it ran).
Invoker = Callable[[CloudEvent[Any], bool], Awaitable[tuple[list[Output], bool]]]

BUILT_IN = "built-in"
_UNPLANNED: Any = object()  # a (type, version) whose handlers' views are not worked out yet
# Set by the loader (``handlers.plugins``) while a module or plugin registers: where a handler came from.
LOADING_ORIGIN: ContextVar[str | None] = ContextVar("salesflow_handler_origin", default=None)


@dataclass(frozen=True)
class RegisteredHandler:
    """One handler of one event type. ``invoke`` is set by binding, for handlers that need more than
    the event; a pure handler is called as ``fn(event)``, with nothing around it."""

    name: str
    event_type: EventType
    fn: HandlerFn
    signature: HandlerSignature = PURE
    on_replay: OnReplay = "recompute"
    origin: str = BUILT_IN
    invoke: Invoker | None = None
    # The payload version it takes (its struct); an older event is upcast to it (``domain.upcasting``).
    takes: type[Payload] | None = None


class HandlerRegistry:
    """Handlers per event type, in registration order; every one of them runs for each event."""

    def __init__(self) -> None:
        self._by_type: dict[EventType, list[RegisteredHandler]] = {t: [] for t in EventType}
        # payload struct (one version of one type) -> None when every handler of its type takes it as
        # it is, else the version each takes
        self._views: dict[type[Payload], tuple[type[Payload], ...] | None] = {}

    def register(
        self,
        event_type: EventType,
        *,
        name: str | None = None,
        on_replay: OnReplay | None = None,
        version: str | None = None,
    ) -> Callable[[H], H]:
        """Register ``fn`` for ``event_type``. Its parameters are checked now: an unknown dependency
        raises ``HandlerDependencyError``. ``on_replay``: on a replay, run it again ("recompute": its
        writes must be idempotent, e.g. upserts) or never again once applied ("skip"); the default is
        "skip" for a handler that takes ``db`` and "recompute" for any other. ``version``: the payload
        version it is written against (default: the newest); older events are upcast to it."""
        if on_replay not in (None, "recompute", "skip"):
            raise ValueError(f"on_replay={on_replay!r}: use 'recompute' or 'skip'")
        takes = PAYLOAD_MODELS.get((event_type, version or latest(event_type)))
        if takes is None:
            raise ValueError(f"version={version!r}: {event_type} has no such payload version")

        def decorate(fn: H) -> H:
            handler_name = name or f"{(fn.__module__ or '?').rsplit('.', 1)[-1]}.{fn.__name__}"
            if any(h.name == handler_name for h in self._by_type[event_type]):
                raise ValueError(f"handler {handler_name!r} is already registered for {event_type}")
            signature = analyse(fn, handler_name)
            replay_choice: OnReplay = on_replay or ("skip" if signature.takes_db else "recompute")
            handler = RegisteredHandler(
                handler_name, event_type, fn, signature, replay_choice, _origin(fn), takes=takes
            )
            if not signature.pure:
                handler = replace(handler, invoke=_unbound(handler_name))
            self._by_type[event_type].append(handler)
            self._views.clear()
            return fn

        return decorate

    def handlers_for(self, event_type: EventType) -> tuple[RegisteredHandler, ...]:
        return tuple(self._by_type[event_type])

    def views_of(self, event: CloudEvent[Any]) -> dict[str, CloudEvent[Any]] | None:
        """The event as each handler of its type takes it, by handler name; None (nearly always, and
        for the price of one lookup) when every one takes it as it is. Raises ``InvalidEvent`` when a
        handler's version cannot be reached from the event's (an older handler, a newer record)."""
        targets = self._views.get(type(event.data), _UNPLANNED)
        if targets is None:
            return None
        try:
            if targets is _UNPLANNED:
                targets = self._plan(event.type, type(event.data))
        except NoUpcastPath as exc:
            raise InvalidEvent(DeadLetterReason.NO_UPCAST_PATH, str(exc), str(event.id)) from None
        if targets is None:
            return None
        assert isinstance(targets, tuple)
        upcast_to: dict[type[Payload], CloudEvent[Any]] = {}
        views = {}
        for handler, target in zip(self._by_type[event.type], targets, strict=True):
            if target not in upcast_to:
                upcast_to[target] = upcast(event, target)
            views[handler.name] = upcast_to[target]
        return views

    def _plan(self, event_type: EventType, model: type[Payload]) -> tuple[type[Payload], ...] | None:
        targets = tuple(h.takes or model for h in self._by_type[event_type])
        for handler, target in zip(self._by_type[event_type], targets, strict=True):
            try:
                chain(model, target)
            except NoUpcastPath as exc:
                raise NoUpcastPath(exc.source, exc.target, f"handler {handler.name!r} of {event_type}") from None
        plan = None if all(t is model for t in targets) else targets
        self._views[model] = plan
        return plan

    def all(self) -> list[RegisteredHandler]:
        """Every handler, by event type then registration order."""
        return [h for hs in self._by_type.values() for h in hs]

    def table(self) -> dict[EventType, list[str]]:
        """What runs for each event type, by handler name."""
        return {t: [h.name for h in hs] for t, hs in self._by_type.items()}

    def with_invokers(self, make: Callable[[RegisteredHandler], Invoker | None]) -> HandlerRegistry:
        """A copy of this registry whose handlers carry the invoker ``make`` gives them (binding)."""
        bound = HandlerRegistry()
        for event_type, handlers in self._by_type.items():
            bound._by_type[event_type] = [replace(h, invoke=make(h)) for h in handlers]
        return bound


def _unbound(name: str) -> Invoker:
    async def invoke(event: CloudEvent[Any], replay: bool) -> tuple[list[Output], bool]:
        raise RuntimeError(f"handler {name!r} has dependencies and its registry is not bound (injection.bind)")

    return invoke


def _origin(fn: HandlerFn) -> str:
    loading = LOADING_ORIGIN.get()
    if loading is not None:
        return loading
    module = getattr(fn, "__module__", None) or "?"
    return BUILT_IN if module.startswith("salesflow.handlers.") else f"module {module}"


DEFAULT_REGISTRY = HandlerRegistry()


def register_event_handler(
    event_type: EventType, *, name: str | None = None, on_replay: OnReplay | None = None, version: str | None = None
) -> Callable[[H], H]:
    """Register a handler for ``event_type`` in the default registry (see ``HandlerRegistry.register``)."""
    return DEFAULT_REGISTRY.register(event_type, name=name, on_replay=on_replay, version=version)
