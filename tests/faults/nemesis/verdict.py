"""The nemesis's exact check: the workload's log against Kafka and Postgres, after healing and quiet.

- every committed outbox row and every acknowledged event is ``processed`` (``dead_lettered`` for
  poison) exactly once: ``lost``, ``duplicates`` (a fact row too many, a poison record dead-lettered
  twice), ``wrong_status``;
- its facts equal the clean run's (``wrong_facts``, from the core run offline);
- no rolled-back outbox row appears, anywhere (``rolled_back_seen``); the outbox is empty;
- statuses never went backwards while it ran (``backwards``, from the status sampler);
- both consumer groups end with no lag, every service alive, every member holding partitions.

``lost`` and the fact checks reuse the fault suite's checker (tests/faults/checker.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.replay.group_lag import group_lag
from salesflow.settings import Settings
from tests.faults.checker import Verdict, check
from tests.faults.nemesis.expected import clean_run_facts, recorded_facts
from tests.faults.nemesis.load import LoadLog


@dataclass
class NemesisVerdict:
    base: Verdict
    wrong_facts: int = 0
    rolled_back_seen: int = 0
    ambiguous_landed: int = 0
    outbox_left: int = 0
    poison_lost: int = 0
    poison_twice: int = 0
    backwards: int = 0
    lag: dict[str, int] = field(default_factory=dict)
    idle: list[str] = field(default_factory=list)  # services down, or group members holding nothing

    @property
    def clean(self) -> bool:
        b = self.base
        return (
            b.lost == 0
            and b.duplicates == 0
            and b.missing_facts == 0
            and b.wrong_status == 0
            and self.wrong_facts == 0
            and self.rolled_back_seen == 0
            and self.outbox_left == 0
            and self.poison_lost == 0
            and self.poison_twice == 0
            and self.backwards == 0
            and not any(self.lag.values())
            and not self.idle
        )

    def line(self, name: str, **figures: Any) -> str:
        return self.base.line(
            name,
            wrong_facts=self.wrong_facts,
            rolled_back_seen=self.rolled_back_seen,
            poison_lost=self.poison_lost,
            poison_twice=self.poison_twice,
            backwards=self.backwards,
            outbox_left=self.outbox_left,
            ambiguous_landed=self.ambiguous_landed,
            lag=sum(self.lag.values()),
            idle=",".join(self.idle) or "-",
            **figures,
        )


async def judge(
    engine: AsyncEngine, settings: Settings, service_url: str, log: LoadLog, backwards: int, down: list[str]
) -> NemesisVerdict:
    """The verdict; ``down``: the services not running at the end."""
    expected = log.expected
    ambiguous_ids = [UUID(i) for i in log.ambiguous]
    async with engine.connect() as conn:
        landed = await conn.execute(text("SELECT id FROM events WHERE id = ANY(:ids)"), {"ids": ambiguous_ids})
        ambiguous_landed = {str(r.id) for r in landed}
    # An ambiguous commit that landed is judged like a committed one (exactly once, right facts).
    judged = expected | ambiguous_landed
    statuses = dict.fromkeys(judged, "processed")
    verdict = NemesisVerdict(
        base=await check(engine, log.events, judged, statuses), ambiguous_landed=len(ambiguous_landed)
    )
    want = await clean_run_facts(settings, [log.events[i] for i in sorted(judged)])
    got = await recorded_facts(engine, [UUID(i) for i in judged])
    verdict.wrong_facts = sum(1 for i in judged if want.get(i, {}) != got.get(i, {}) and i in got)
    async with engine.connect() as conn:
        seen = await conn.execute(
            text("SELECT count(*) FROM events WHERE id = ANY(:ids)"), {"ids": [UUID(i) for i in log.rolled_back]}
        )
        verdict.rolled_back_seen = int(seen.scalar_one())
        verdict.poison_lost, verdict.poison_twice = await _poison(conn, log)
    verdict.outbox_left = await _outbox_rows(service_url)
    verdict.backwards = backwards
    verdict.idle = list(down)
    for group, members in ((settings.processor_group, 2), (settings.projection_group, 1)):
        lagged = await group_lag(settings, group)
        verdict.lag[group] = lagged.total_lag
        holders = {r.consumer_id for r in lagged.rows if r.consumer_id}
        if lagged.members != members or len(holders) != members:
            verdict.idle.append(f"{group}:{len(holders)}of{members}")
    return verdict


async def _poison(conn: Any, log: LoadLog) -> tuple[int, int]:
    lost = twice = 0
    for p in log.poison:
        found = await conn.execute(
            text('SELECT count(*) FROM dead_letters WHERE topic = :t AND "partition" = :p AND "offset" = :o'),
            {"t": p.topic, "p": p.partition, "o": p.offset},
        )
        n = int(found.scalar_one())
        lost += n == 0
        twice += n > 1
    return lost, twice


async def _outbox_rows(service_url: str) -> int:
    url = make_url(service_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )
    try:
        return int(await conn.fetchval("SELECT count(*) FROM salesflow_outbox"))
    finally:
        await conn.close()
