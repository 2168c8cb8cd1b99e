"""A handler module for the tracing test (``SALESFLOW_HANDLER_MODULES``): fails for leads whose id
starts with ``fail-``, so a failed handler's span can be looked at."""

from __future__ import annotations

from typing import Any

from salesflow.domain.events import CloudEvent, EventType
from salesflow.handlers import register_event_handler


@register_event_handler(EventType.LEAD_CREATED, name="crm.sync_lead")
async def sync_lead(event: CloudEvent[Any]) -> None:
    if event.lead_id.startswith("fail-"):
        raise RuntimeError(f"the CRM refused lead {event.lead_id}")
