"""The plugin's own tables, created by its own DDL the first time a handler needs them.

- ``lead_score_points``: one row per scored event (the ledger), keyed by (tenant, event id);
- ``lead_scores``: the score per lead, the sum of its points, rewritten from the ledger each time;
- ``lead_alerts``: one row per alert sent (a plain insert: only the once-per-event record keeps it
  from being sent twice).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

DDL = (
    """CREATE TABLE IF NOT EXISTS lead_score_points (
        tenant_id text NOT NULL, event_id uuid NOT NULL, lead_id text NOT NULL,
        reason text NOT NULL, points integer NOT NULL,
        PRIMARY KEY (tenant_id, event_id))""",
    """CREATE TABLE IF NOT EXISTS lead_scores (
        tenant_id text NOT NULL, lead_id text NOT NULL, score integer NOT NULL, events integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, lead_id))""",
    """CREATE TABLE IF NOT EXISTS lead_alerts (
        id bigserial PRIMARY KEY, tenant_id text NOT NULL, lead_id text NOT NULL, event_id uuid NOT NULL,
        message text NOT NULL, sent_at timestamptz NOT NULL DEFAULT now())""",
)
# Two workers starting at once would race on CREATE TABLE IF NOT EXISTS: one lock serialises them.
LOCK_KEY = 0x5F1EAD5C0

_ready: set[str] = set()


async def ensure_schema(engine: AsyncEngine) -> None:
    """Create the tables once per process and database, in a transaction of their own (so a handler's
    rollback never takes them away)."""
    key = engine.url.render_as_string(hide_password=True)
    if key in _ready:
        return
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        for statement in DDL:
            await conn.execute(text(statement))
    _ready.add(key)
