"""The transactional outbox: services publish typed events in their own database transaction
(``OutboxEventBus``), and ``salesflow outbox relay`` moves the committed ones to Kafka.

``DirectEventBus`` serves services without a database. See docs/how-to/produce-events.md.
The names are imported on first use, so ``salesflow outbox --help`` loads neither SQLAlchemy nor a
Kafka client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from salesflow.outbox.bus import EventBus, OutboxEventBus, outbox_row
    from salesflow.outbox.bus_errors import PublishFailed, PublishTimeout
    from salesflow.outbox.direct import DirectEventBus, direct_event_bus
    from salesflow.outbox.schema import create_outbox, drop_outbox, outbox_table

# Public name -> the module that defines it.
_EXPORTS = {
    "EventBus": "bus",
    "OutboxEventBus": "bus",
    "outbox_row": "bus",
    "DirectEventBus": "direct",
    "direct_event_bus": "direct",
    "PublishFailed": "bus_errors",
    "PublishTimeout": "bus_errors",
    "create_outbox": "schema",
    "drop_outbox": "schema",
    "outbox_table": "schema",
}

__all__ = [
    "DirectEventBus",
    "EventBus",
    "OutboxEventBus",
    "PublishFailed",
    "PublishTimeout",
    "create_outbox",
    "direct_event_bus",
    "drop_outbox",
    "outbox_row",
    "outbox_table",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"salesflow.outbox.{module}"), name)
