"""A plugin whose handler writes a row and then fails: once, transiently, for lead ids starting with
"flaky-" (a CRM that drops the connection); every time, for good, for lead ids starting "doomed-".
The table ``faulty_plugin_writes`` is created by the test that installs this plugin."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.domain.events import CloudEvent, EventType
from salesflow.handlers import register_event_handler

attempts: Counter[str] = Counter()


@register_event_handler(EventType.LEAD_CREATED, name="faulty.enrich")
async def enrich(db: AsyncSession, event: CloudEvent[Any]) -> None:
    attempts[str(event.id)] += 1
    await db.execute(
        text("INSERT INTO faulty_plugin_writes (event_id, lead_id) VALUES (:e, :l)"),
        {"e": event.id, "l": event.lead_id},
    )
    if event.lead_id.startswith("flaky-") and attempts[str(event.id)] == 1:
        raise ConnectionError("crm dropped the connection")
    if event.lead_id.startswith("doomed-"):
        raise ValueError(f"crm rejected lead {event.lead_id}")
