"""Read-side queries over the projection: the summary the demo prints (and later the API serves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

STATUS_COUNTS = text("""
    SELECT coalesce(type, '(undecodable)') AS type, status, count(*) AS events
    FROM events GROUP BY 1, 2 ORDER BY 1, 2
""")

FUNNEL = text("""
    SELECT tenant_id, stage, sum(leads)::bigint AS leads
    FROM funnel_daily GROUP BY 1, 2 ORDER BY 1, 2
""")

AI_ROI = text("""
    SELECT tenant_id, sum(actions)::bigint AS actions, round(sum(cost_usd), 4) AS cost_usd,
           round(sum(value_usd), 2) AS value_usd, round(sum(value_usd) / nullif(sum(cost_usd), 0), 2) AS roi
    FROM ai_roi_daily GROUP BY 1 ORDER BY 1
""")

DEAD_LETTERS = text("SELECT reason, count(*) AS records FROM dead_letters GROUP BY 1 ORDER BY 1")

FINAL_COUNT = text("SELECT count(*) FROM events WHERE status <> 'pending'")


@dataclass
class Summary:
    status_counts: list[dict[str, Any]]
    funnel: list[dict[str, Any]]
    ai_roi: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]


async def summary(engine: AsyncEngine) -> Summary:
    async with engine.connect() as conn:

        async def rows(query: Any) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in await conn.execute(query)]

        return Summary(
            status_counts=await rows(STATUS_COUNTS),
            funnel=await rows(FUNNEL),
            ai_roi=await rows(AI_ROI),
            dead_letters=await rows(DEAD_LETTERS),
        )
