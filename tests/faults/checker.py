"""The verdict of a fault test: acknowledged ids against what Postgres recorded (after Jepsen's Kafka
workload: an acknowledged event that never arrives is lost; an effect applied twice is a duplicate)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.workload import expected_fact_rows

FACT_TABLES = ("funnel_facts", "attribution_touches", "ai_action_facts", "message_facts", "sequence_step_facts")


@dataclass
class Verdict:
    acknowledged: int
    recorded: int
    lost: int
    duplicates: int
    missing_facts: int
    wrong_status: int
    cost_recorded: float
    cost_expected: float

    def line(self, name: str, **figures: Any) -> str:
        extra = " ".join(f"{k}={v}" for k, v in figures.items())
        return (
            f"[fault] {name}: acknowledged={self.acknowledged} recorded={self.recorded} lost={self.lost} "
            f"duplicates={self.duplicates} missing_facts={self.missing_facts} wrong_status={self.wrong_status} {extra}"
        )


async def final_ids(engine: AsyncEngine, ids: list[UUID]) -> set[UUID]:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT id FROM events WHERE id = ANY(:ids) AND status <> 'pending'"), {"ids": ids}
        )
        return {row.id for row in found}


async def check(
    engine: AsyncEngine,
    events: dict[str, dict[str, Any]],
    acknowledged: set[str],
    expected_status: dict[str, str] | None = None,
) -> Verdict:
    """Compare the acknowledged events with their rows and facts in Postgres."""
    ids = [UUID(i) for i in acknowledged]
    async with engine.connect() as conn:
        statuses = {
            str(r.id): r.status
            for r in await conn.execute(text("SELECT id, status FROM events WHERE id = ANY(:ids)"), {"ids": ids})
        }
        rows: Counter[tuple[str, str]] = Counter()
        for table in FACT_TABLES:
            for r in await conn.execute(text(f"SELECT event_id FROM {table} WHERE event_id = ANY(:ids)"), {"ids": ids}):
                rows[(str(r.event_id), table)] += 1
        cost = (
            await conn.execute(
                text("SELECT coalesce(sum(cost_usd), 0) FROM ai_action_facts WHERE event_id = ANY(:ids)"), {"ids": ids}
            )
        ).scalar_one()
    recorded = {i for i, s in statuses.items() if s != "pending"}
    wanted = expected_status or {}
    duplicates = sum(
        1
        for i in recorded
        if statuses[i] == "processed" and any(rows[(i, t)] > n for t, n in expected_fact_rows(events[i]).items())
    )
    missing = sum(
        1
        for i in recorded
        if statuses[i] == "processed" and any(rows[(i, t)] < n for t, n in expected_fact_rows(events[i]).items())
    )
    wrong = sum(1 for i in recorded if statuses[i] != wanted.get(i, "processed"))
    cost_expected = sum(
        float(events[i]["data"]["cost_usd"])
        for i in acknowledged
        if events[i]["type"] == "autopilot.action_executed" and statuses.get(i) == "processed"
    )
    return Verdict(
        acknowledged=len(acknowledged),
        recorded=len(recorded),
        lost=len(acknowledged - recorded),
        duplicates=duplicates,
        missing_facts=missing,
        wrong_status=wrong,
        cost_recorded=float(cost),
        cost_expected=cost_expected,
    )
