"""Statuses as they change, sampled from Postgres while the nemesis runs: a status that goes backwards
(a final one read as ``pending`` again, or one final status replaced by another) is counted."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.engine import make_url

RANK = {"pending": 0, "processed": 1, "failed": 1, "dead_lettered": 1}


@dataclass
class StatusWatch:
    database_url: str
    every: float = 2.0
    seen: dict[str, str] = field(default_factory=dict)
    backwards: list[tuple[str, str, str]] = field(default_factory=list)  # (id, before, after)
    _task: asyncio.Task[None] | None = None

    def start(self) -> StatusWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        since = datetime.now(UTC) - timedelta(minutes=1)
        url = make_url(self.database_url)
        while True:
            try:
                conn = await asyncpg.connect(
                    host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
                )
                try:
                    while True:
                        since = await self._sample(conn, since)
                        await asyncio.sleep(self.every)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(self.every)  # Postgres restarting: sample again once it is back

    async def _sample(self, conn: asyncpg.Connection, since: datetime) -> datetime:
        now = await conn.fetchval("SELECT clock_timestamp()")
        # A margin for transactions that committed late with an earlier updated_at.
        rows = await conn.fetch("SELECT id, status FROM events WHERE updated_at >= $1", since - timedelta(seconds=30))
        for row in rows:
            key, status = str(row["id"]), row["status"]
            before = self.seen.get(key)
            if before is not None and (RANK[status] < RANK[before] or (RANK[before] == 1 and status != before)):
                self.backwards.append((key, before, status))
            self.seen[key] = status
        return now  # type: ignore[no-any-return]
