"""Choosing and loading handler plugins (entry points of group ``salesflow.handlers``), without installing any."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from salesflow.domain.events import CloudEvent, EventType
from salesflow.handlers import plugins
from salesflow.handlers.registry import HandlerRegistry
from salesflow.handlers.signature import HandlerDependencyError
from salesflow.settings import Settings

GROUP = plugins.ENTRY_POINT_GROUP
SCORING = EntryPoint("scoring", f"{__name__}:register_scoring", GROUP)
BROKEN = EntryPoint("broken", f"{__name__}:register_broken", GROUP)
MISSING = EntryPoint("missing", "no_such_module_here:register", GROUP)


def register_scoring(registry: HandlerRegistry) -> None:
    async def score(event: CloudEvent[Any]) -> None:
        return None

    registry.register(EventType.LEAD_CREATED, name="scoring.score")(score)


def register_broken(registry: HandlerRegistry) -> None:
    async def needs_a_queue(event: CloudEvent[Any], queue: str) -> None:
        return None

    registry.register(EventType.LEAD_CREATED, name="broken.enqueue")(needs_a_queue)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("all", ["broken", "scoring"]),
        ("none", []),
        ("", []),
        ("scoring", ["scoring"]),
        (" scoring , broken ", ["broken", "scoring"]),
    ],
)
def test_the_setting_selects_plugins_by_name(choice: str, expected: list[str]) -> None:
    assert [ep.name for ep in plugins.selected([BROKEN, SCORING], choice)] == expected


def test_a_plugin_name_that_is_not_installed_is_refused() -> None:
    with pytest.raises(plugins.PluginError, match="names nosuch, not an installed handler plugin"):
        plugins.selected([SCORING], "scoring,nosuch")


def test_a_callable_entry_point_registers_into_the_given_registry_with_its_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plugins, "installed", lambda: [SCORING])
    registry = HandlerRegistry()
    loaded = plugins.load_handlers(Settings(handler_plugins="all"), registry)
    assert [p.name for p in loaded] == ["scoring"]
    (handler,) = registry.handlers_for(EventType.LEAD_CREATED)
    assert (handler.name, handler.origin) == ("scoring.score", "plugin ? (scoring)")  # no distribution here


def test_an_unknown_dependency_in_a_plugin_stops_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "installed", lambda: [BROKEN])
    with pytest.raises(HandlerDependencyError, match=r"'broken\.enqueue': parameter 'queue'"):
        plugins.load_handlers(Settings(handler_plugins="all"), HandlerRegistry())


def test_a_plugin_that_cannot_be_imported_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "installed", lambda: [MISSING])
    with pytest.raises(
        plugins.PluginError, match="plugin \\? \\(missing\\): cannot import no_such_module_here:register"
    ):
        plugins.load_handlers(Settings(handler_plugins="all"), HandlerRegistry())


def test_plugins_none_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "installed", lambda: [MISSING, BROKEN])
    assert plugins.load_handlers(Settings(handler_plugins="none"), HandlerRegistry()) == []
