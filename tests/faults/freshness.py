"""What a fault cost in time, read back from Postgres: the worst freshness (processed - occurred, as
the SLO counts it) and the longest a partition went without an event being processed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# processed_at is the worker's clock (the outcome), updated_at the projection's write: the first says
# how late an event was processed, the second how late its status became visible.
STAMPS = ("processed_at", "updated_at")


@dataclass
class Delays:
    worst_freshness_s: float  # max(stamp - created_at) over the events that occurred in the window
    stall_s: float  # max gap between consecutive stamps on one source partition, ending in the window
    stalled_partition: str

    def figures(self, prefix: str = "") -> dict[str, str]:
        return {
            f"{prefix}worst_freshness_s": f"{self.worst_freshness_s:.1f}",
            f"{prefix}stall_s": f"{self.stall_s:.1f}",
            f"{prefix}stalled_partition": self.stalled_partition,
        }


async def delays(engine: AsyncEngine, since: datetime, until: datetime, stamp: str = "processed_at") -> Delays:
    """The worst freshness of the processed events that occurred between ``since`` and ``until`` (wall
    clock, UTC), and the longest gap between two events processed on one partition that ended in that
    window (the gap over the fault included, whenever the events were produced). Under a steady
    produce rate each partition is processed many times a second, so its longest gap is how long it
    stood still: for the partitions of a killed worker, the time to fail over."""
    assert stamp in STAMPS
    window = {"since": since, "until": until}
    async with engine.connect() as conn:
        worst = (
            await conn.execute(
                text(
                    f"SELECT coalesce(max(extract(epoch FROM {stamp} - created_at)), 0) FROM events "
                    "WHERE status = 'processed' AND created_at BETWEEN :since AND :until"
                ),
                window,
            )
        ).scalar_one()
        gap = (
            await conn.execute(
                text(
                    f"""
                    SELECT source_topic, source_partition, extract(epoch FROM {stamp} - previous) AS gap
                    FROM (
                        SELECT source_topic, source_partition, {stamp},
                               lag({stamp}) OVER (PARTITION BY source_topic, source_partition ORDER BY {stamp})
                                   AS previous
                        FROM events WHERE status = 'processed'
                    ) stamps
                    WHERE previous IS NOT NULL AND {stamp} BETWEEN :since AND :until
                    ORDER BY gap DESC LIMIT 1
                    """
                ),
                window,
            )
        ).first()
    if gap is None:
        return Delays(float(worst), 0.0, "-")
    return Delays(float(worst), float(gap.gap), f"{gap.source_topic.rsplit('.', 2)[-2]}[{gap.source_partition}]")
