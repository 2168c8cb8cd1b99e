"""The scoring rules and the two handlers.

``score`` writes the event's points into the ledger (an upsert keyed by the event: idempotent) and
recomputes the lead's score from the ledger, so it is safe to run again on a replay ("recompute").
``alert_on_referral`` inserts an alert: not idempotent, so it is declared ``on_replay="skip"`` and
relies on SalesFlow's once-per-event record, in the same transaction, never to send it twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from lead_scoring.schema import ensure_schema
from salesflow.domain.events import CloudEvent, EventType

SOURCE_POINTS = {"referral": 30, "web_form": 20, "api": 10, "import": 5}
MESSAGE_POINTS = 5
SUCCEEDED_ACTION_POINTS = 10


def points(event: CloudEvent[Any]) -> tuple[str, int]:
    """The reason and the points an event earns its lead."""
    data = event.data
    if event.type is EventType.LEAD_CREATED:
        return f"source:{data.source.value}", SOURCE_POINTS.get(data.source.value, 0)
    if event.type is EventType.MESSAGE_SENT:
        return f"message:{data.channel.value}", MESSAGE_POINTS
    succeeded = data.outcome.value == "succeeded"
    return f"action:{data.outcome.value}", SUCCEEDED_ACTION_POINTS if succeeded else 0


async def score(db: AsyncSession, event: CloudEvent[Any]) -> None:
    await ensure_schema(_engine(db))
    reason, earned = points(event)
    key = {"tenant": event.tenantid, "lead": event.lead_id}
    # Events of one lead arrive on several topics, handled at once: one lead's score is rewritten
    # by one transaction at a time, each seeing the points the others committed.
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:tenant || ':' || :lead))"), key)
    await db.execute(
        text(
            """INSERT INTO lead_score_points (tenant_id, event_id, lead_id, reason, points)
               VALUES (:tenant, :event_id, :lead, :reason, :points)
               ON CONFLICT (tenant_id, event_id) DO UPDATE SET reason = excluded.reason, points = excluded.points"""
        ),
        {**key, "event_id": event.id, "reason": reason, "points": earned},
    )
    await db.execute(
        text(
            """INSERT INTO lead_scores (tenant_id, lead_id, score, events)
               SELECT :tenant, :lead, sum(points), count(*) FROM lead_score_points
               WHERE tenant_id = :tenant AND lead_id = :lead
               ON CONFLICT (tenant_id, lead_id) DO UPDATE
               SET score = excluded.score, events = excluded.events, updated_at = now()"""
        ),
        key,
    )


async def alert_on_referral(db: AsyncSession, event: CloudEvent[Any], logger: logging.Logger) -> None:
    if event.data.source.value != "referral":
        return
    await ensure_schema(_engine(db))
    message = f"new referral lead {event.lead_id}"
    await db.execute(
        text("INSERT INTO lead_alerts (tenant_id, lead_id, event_id, message) VALUES (:t, :l, :e, :m)"),
        {"t": event.tenantid, "l": event.lead_id, "e": event.id, "m": message},
    )
    logger.info("alert: %s", message)


def _engine(db: AsyncSession) -> AsyncEngine:
    bind = db.bind
    assert isinstance(bind, AsyncEngine), "SalesFlow gives handlers a session bound to an engine"
    return bind
