"""What a handler asks for, read from its parameters once, when it is registered (at start-up).

A handler declares its dependencies by parameter name and type; the composition root injects them
(``handlers.injection``). The parameters it may ask for:

| name       | type                  | what it gets                                                            |
| ---------- | --------------------- | ----------------------------------------------------------------------- |
| `event`    | `CloudEvent[...]`     | the event being handled                                                 |
| `db`       | `AsyncSession`        | a session on `SALESFLOW_HANDLER_DATABASE_URL`, in a transaction with the |
|            |                       | handler's idempotency record (``handlers.effects``)                     |
| `settings` | `Settings`            | the process's settings                                                  |
| `http`     | `httpx.AsyncClient`   | one HTTP client shared by the process                                   |
| `logger`   | `logging.Logger`      | a logger named after the handler                                        |

A parameter is matched by its name, or else by its type; a parameter that matches neither and has no
default is refused with ``HandlerDependencyError``, which names the handler and the parameter.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from salesflow.errors import ConfigurationError

Dependency = Literal["event", "db", "settings", "http", "logger"]
OnReplay = Literal["recompute", "skip"]

# Dependency -> the type names that ask for it (the last dotted part, as written or resolved).
DEPENDENCY_TYPES: dict[Dependency, tuple[str, ...]] = {
    "event": ("CloudEvent",),
    "db": ("AsyncSession",),
    "settings": ("Settings",),
    "http": ("AsyncClient",),
    "logger": ("Logger",),
}
KNOWN = "event (CloudEvent), db (AsyncSession), settings (Settings), http (httpx.AsyncClient), logger (logging.Logger)"


class HandlerDependencyError(ConfigurationError):
    """A handler asks for something the composition root cannot inject; raised at registration."""

    def __init__(self, handler: str, parameter: str | None, reason: str) -> None:
        where = f"handler {handler!r}" + (f": parameter {parameter!r}" if parameter else "")
        super().__init__(f"{where} {reason}; a handler may ask for {KNOWN}")
        self.handler = handler
        self.parameter = parameter


@dataclass(frozen=True)
class HandlerSignature:
    """The parameters of a handler and the dependency each one is injected with."""

    params: tuple[tuple[str, Dependency], ...]
    # `handler(event)` called positionally: the built-in shape, run with no per-event wrapper at all.
    pure: bool

    @property
    def dependencies(self) -> tuple[Dependency, ...]:
        return tuple(dep for _, dep in self.params)

    @property
    def takes_db(self) -> bool:
        return "db" in self.dependencies


# The built-in shape, ``handler(event)``.
PURE = HandlerSignature(params=(("event", "event"),), pure=True)


def analyse(fn: Callable[..., Any], handler: str) -> HandlerSignature:
    """Match each parameter of ``fn`` to a dependency, or raise ``HandlerDependencyError``."""
    if not (inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)):
        raise HandlerDependencyError(handler, None, "is not an `async def` function")
    hints = _type_hints(fn)
    params: list[tuple[str, Dependency]] = []
    positional = True
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name, param.annotation)
        dep = _dependency(handler, param, annotation)
        if dep is None:
            continue  # has a default: left to it
        if param.kind is param.POSITIONAL_ONLY and params:
            raise HandlerDependencyError(handler, param.name, "is positional-only: dependencies are passed by name")
        positional = positional and param.kind is not param.KEYWORD_ONLY
        params.append((param.name, dep))
    pure = [dep for _, dep in params] == ["event"] and positional
    return HandlerSignature(params=tuple(params), pure=pure)


def _dependency(handler: str, param: inspect.Parameter, annotation: Any) -> Dependency | None:
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        raise HandlerDependencyError(handler, param.name, "is variadic: declare each dependency by name")
    by_name: Dependency | None = param.name if param.name in DEPENDENCY_TYPES else None
    by_type = _by_type(annotation)
    if by_name and by_type and by_name != by_type:
        raise HandlerDependencyError(
            handler, param.name, f"is annotated {_shown(annotation)}, which is what `{by_type}` is, not `{by_name}`"
        )
    found = by_name or by_type
    if found is None and param.default is param.empty:
        what = f"({_shown(annotation)}) " if annotation is not param.empty else ""
        raise HandlerDependencyError(handler, param.name, f"{what}is not a known dependency")
    return found


def _by_type(annotation: Any) -> Dependency | None:
    names = {_type_name(annotation)}
    if isinstance(annotation, type):
        names.update(base.__name__ for base in annotation.__mro__)
    for dep, type_names in DEPENDENCY_TYPES.items():
        if names.intersection(type_names):
            return dep
    return None


def _type_name(annotation: Any) -> str:
    """``CloudEvent[LeadCreatedV1]`` -> ``CloudEvent``; ``"httpx.AsyncClient"`` -> ``AsyncClient``."""
    if isinstance(annotation, str):
        # Quoted once more under `from __future__ import annotations` when written as a string.
        return annotation.strip("'\" ").split("[", 1)[0].rsplit(".", 1)[-1].strip()
    origin = typing.get_origin(annotation) or annotation
    name = getattr(origin, "__name__", "")
    return name.split("[", 1)[0] if isinstance(name, str) else ""


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a name imported under TYPE_CHECKING only: fall back to the annotation text
        return {}


def _shown(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else _type_name(annotation) or repr(annotation)
