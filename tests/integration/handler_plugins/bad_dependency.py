"""A handler module the worker must refuse to start with (``SALESFLOW_HANDLER_MODULES``): it asks for
a dependency nothing provides."""

from __future__ import annotations

from typing import Any

from salesflow.domain.events import CloudEvent, EventType
from salesflow.handlers import register_event_handler


@register_event_handler(EventType.LEAD_CREATED, name="crm.sync_lead")
async def sync_lead(event: CloudEvent[Any], crm_client: object) -> None:
    return None
