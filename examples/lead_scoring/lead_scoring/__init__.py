"""Lead scoring, an example SalesFlow handler plugin.

Installed (``pip install examples/lead_scoring``), it is found through its entry point in group
``salesflow.handlers`` and loaded by every SalesFlow worker (``SALESFLOW_HANDLER_PLUGINS`` selects
plugins). ``register`` adds its handlers to the registry it is given, so importing the package
registers nothing by itself.
"""

from __future__ import annotations

from lead_scoring.handlers import alert_on_referral, score
from salesflow.domain.events import EventType
from salesflow.handlers.registry import HandlerRegistry

SCORED_TYPES = (EventType.LEAD_CREATED, EventType.AUTOPILOT_ACTION_EXECUTED, EventType.MESSAGE_SENT)


def register(registry: HandlerRegistry) -> None:
    """The entry point: score every scored event (recomputed on replay), alert once on a referral."""
    for event_type in SCORED_TYPES:
        registry.register(event_type, name="lead_scoring.score", on_replay="recompute")(score)
    registry.register(EventType.LEAD_CREATED, name="lead_scoring.alert_on_referral", on_replay="skip")(
        alert_on_referral
    )


__all__ = ["register"]
