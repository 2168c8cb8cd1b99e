"""Loading handlers from outside the built-ins: modules named in ``SALESFLOW_HANDLER_MODULES`` and
installed plugins, the entry points of group ``salesflow.handlers``.

An entry point names either a module (importing it runs its ``@register_event_handler`` decorators,
into the default registry) or a callable ``register(registry)`` that registers into the registry it
is given. Which plugins load is ``SALESFLOW_HANDLER_PLUGINS``: ``all`` (the default), ``none``, or a
comma-separated list of entry point or distribution names. Every handler keeps where it came from
(``RegisteredHandler.origin``), which ``salesflow handlers`` shows.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from salesflow.errors import ConfigurationError
from salesflow.handlers.registry import LOADING_ORIGIN, HandlerRegistry
from salesflow.settings import Settings

ENTRY_POINT_GROUP = "salesflow.handlers"


class PluginError(ConfigurationError):
    """A plugin or handler module could not be loaded; the message names it."""


@dataclass(frozen=True)
class Plugin:
    """One installed entry point of group ``salesflow.handlers``."""

    name: str
    distribution: str | None
    target: str  # "module:attribute" or "module"

    @property
    def origin(self) -> str:
        return f"plugin {self.distribution or '?'} ({self.name})"


def load_handlers(settings: Settings, registry: HandlerRegistry) -> list[Plugin]:
    """Import the configured handler modules, then the selected plugins; return the plugins loaded.
    An unknown dependency in any of them raises ``HandlerDependencyError`` (a start-up refusal)."""
    for module in filter(None, (m.strip() for m in settings.handler_modules.split(","))):
        with _origin(f"module {module}"):
            importlib.import_module(module)
    loaded = []
    for entry_point in selected(installed(), settings.handler_plugins):
        plugin = _plugin(entry_point)
        with _origin(plugin.origin):
            _register(entry_point, plugin, registry)
        loaded.append(plugin)
    return loaded


def installed() -> list[EntryPoint]:
    """The entry points of group ``salesflow.handlers`` visible to this interpreter, by name."""
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def selected(available: list[EntryPoint], choice: str) -> list[EntryPoint]:
    """The entry points ``SALESFLOW_HANDLER_PLUGINS`` selects; a name that matches none is an error."""
    wanted = {c.strip() for c in choice.split(",") if c.strip()}
    if wanted == {"all"}:
        return available
    if not wanted or wanted == {"none"}:
        return []
    chosen = [ep for ep in available if {ep.name, _distribution(ep)} & wanted]
    missing = wanted - {n for ep in chosen for n in (ep.name, _distribution(ep))}
    if missing:
        names = ", ".join(sorted(missing))
        raise PluginError(f"SALESFLOW_HANDLER_PLUGINS names {names}, not an installed handler plugin")
    return chosen


def _register(entry_point: EntryPoint, plugin: Plugin, registry: HandlerRegistry) -> None:
    try:
        target = entry_point.load()
    except ImportError as exc:
        raise PluginError(f"handler plugin {plugin.origin}: cannot import {plugin.target}: {exc}") from exc
    if isinstance(target, ModuleType):
        return  # its decorators registered its handlers on import
    if not callable(target):
        raise PluginError(f"handler plugin {plugin.origin}: {plugin.target} is neither a module nor a callable")
    target(registry)


def _plugin(entry_point: EntryPoint) -> Plugin:
    return Plugin(name=entry_point.name, distribution=_distribution(entry_point), target=entry_point.value)


def _distribution(entry_point: EntryPoint) -> str | None:
    return entry_point.dist.name if entry_point.dist is not None else None


@contextmanager
def _origin(origin: str) -> Iterator[None]:
    token = LOADING_ORIGIN.set(origin)
    try:
        yield
    finally:
        LOADING_ORIGIN.reset(token)
