"""Handlers the fault suite loads into the worker (``SALESFLOW_HANDLER_MODULES``): one that fails
transiently for the first seconds after its first call (as a CRM that is down, then back), one that
always fails for doomed leads."""

from __future__ import annotations

import os
import time
from typing import Any

from salesflow.domain.events import CloudEvent, EventType
from salesflow.domain.outputs import Output
from salesflow.handlers import register_event_handler
from tests.faults.plugin_names import DOOMED_PREFIX, FLAKY_SECONDS

_first_call: list[float] = []


@register_event_handler(EventType.MESSAGE_SENT, name="faults.flaky_crm_sync")
async def flaky_crm_sync(event: CloudEvent[Any]) -> list[Output]:
    if not _first_call:
        _first_call.append(time.monotonic())
    if time.monotonic() - _first_call[0] < float(os.environ.get(FLAKY_SECONDS, "0")):
        raise ConnectionError("crm unreachable")
    return []


@register_event_handler(EventType.LEAD_CREATED, name="faults.doomed_enrichment")
async def doomed_enrichment(event: CloudEvent[Any]) -> list[Output]:
    if event.lead_id.startswith(DOOMED_PREFIX):
        raise ValueError(f"enrichment rejected lead {event.lead_id}")
    return []
