"""The transactional outbox: services publish typed events in their own database transaction
(``OutboxEventBus``), and ``salesflow outbox relay`` moves the committed ones to Kafka.

``DirectEventBus`` serves services without a database. See README "Producing events from a service".
"""

from salesflow.outbox.bus import EventBus, OutboxEventBus, outbox_row
from salesflow.outbox.direct import DirectEventBus, direct_event_bus
from salesflow.outbox.errors import PublishFailed, PublishTimeout
from salesflow.outbox.schema import create_outbox, drop_outbox, outbox_table

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
