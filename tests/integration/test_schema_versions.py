"""v1 and v2 on the real broker and database: a stream that mixes the versions of ``lead.created``,
with the worker killed half way through, ends in the facts and statuses of the same stream sent all as
v2 (lost 0, duplicates 0); a v3 record, unknown, is dead-lettered and the lead's later events go on.

Each stream has a tenant of its own (the same leads, the same content, other event ids); the facts are
compared with the event id and tenant taken out. The worker is killed (SIGKILL) once the first half is
final and before the second half is sent, so the restart falls mid-stream by construction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.bootstrap import event_producer
from salesflow.domain.events import EventType
from salesflow.domain.versions import schema_uri
from salesflow.kafka_admin import create_topics
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import wait_for
from tests.integration.test_replay_scenario import FACT_TABLES, _plain

pytestmark = pytest.mark.integration

_RUN = uuid.uuid4().hex[:6]
MIXED, ALL_V2 = f"mixed-{_RUN}", f"v2-{_RUN}"
LEADS = 6
V3 = schema_uri(EventType.LEAD_CREATED, "v3")


def lead_created(tenant: str, n: int, k: int, version: str) -> dict[str, Any]:
    """The k-th ``lead.created`` of lead n, as v1 (``campaign``) or v2 (``utm.campaign``): the same lead."""
    campaign = None if (n + k) % 3 == 0 else f"camp-{n}-{k}"
    raw = event_dict(EventType.LEAD_CREATED, tenant, n * 10.0 + k, lead_id=f"lead-{n}", campaign=campaign)
    raw["data"]["source"] = "referral" if n % 2 else "web_form"
    raw["data"]["autopilot"] = n % 2 == 0
    raw["data"]["owner_id"] = f"owner-{n}"
    if version == "v2":
        del raw["data"]["campaign"]
        if campaign is not None:
            raw["data"]["utm"] = {"campaign": campaign}
    bare = version == "v1" and k == 0  # both forms of v1: bare and as a URI
    raw["dataschema"] = "v1" if bare else schema_uri(EventType.LEAD_CREATED, version)
    return raw


def stream(tenant: str, mixed: bool) -> list[dict[str, Any]]:
    """Per lead: created, contacted, created again (a re-import), one sequence step; in the mixed
    stream the lead.created events alternate v1 and v2."""
    events = []
    for n in range(LEADS):
        for k in range(2):
            events.append(lead_created(tenant, n, k, "v1" if mixed and (n + k) % 2 == 0 else "v2"))
            kind = EventType.MESSAGE_SENT if k == 0 else EventType.SEQUENCE_STEP_EXECUTED
            events.append(event_dict(kind, tenant, n * 10.0 + k + 0.5, lead_id=f"lead-{n}"))
    return events


async def test_a_mixed_stream_with_a_restart_gives_the_facts_of_the_all_v2_stream(
    settings_factory: SettingsFactory, service_factory: Any, database_url: str
) -> None:
    from salesflow.db.engine import create_engine

    settings = settings_factory()
    await create_topics(settings)
    engine = create_engine(database_url)
    try:
        service_factory("projection", settings)
        worker = service_factory("worker", settings)
        mixed, all_v2 = stream(MIXED, mixed=True), stream(ALL_V2, mixed=False)
        # v3 of the first lead of the second half: that lead's later records are behind it on its partition
        unknown = {**lead_created(MIXED, LEADS // 2, 0, "v2"), "id": str(uuid.uuid4()), "dataschema": V3}
        first, second = mixed[: len(mixed) // 2], [unknown, *mixed[len(mixed) // 2 :]]
        await send(settings, first)
        await wait_final(engine, first)
        worker.kill()  # SIGKILL: whatever was not committed is read again
        await send(settings, second)
        service_factory("worker", settings)
        await send(settings, all_v2)
        await wait_final(engine, mixed + all_v2)
        got, expected = await facts(engine, mixed), await facts(engine, all_v2)
        for table in FACT_TABLES:
            assert got[table] == expected[table], (table, set(got[table]) ^ set(expected[table]))
        for events in (mixed, all_v2):
            rows = await select(engine, "SELECT id, status FROM events WHERE id = ANY(:ids)", ids=ids(events))
            assert len(rows) == len(events) and {r["status"] for r in rows} == {"processed"}  # lost 0
        dead_sql = "SELECT reason FROM dead_letters WHERE topic = :t"
        topic = settings.topics.source(EventType.LEAD_CREATED)
        dead = await wait_for(lambda: select(engine, dead_sql, t=topic), what="the v3 record's dead letter")
        assert [r["reason"] for r in dead] == ["unsupported_schema"]
        unknown_row = "SELECT status FROM events WHERE id = :id"
        assert await select(engine, unknown_row, id=UUID(unknown["id"])) == [{"status": "dead_lettered"}]
    finally:
        await engine.dispose()


async def send(settings: Settings, events: Sequence[dict[str, Any]]) -> None:
    async with event_producer(settings) as producer:
        assert not (await producer.send_all(list(events))).failed


async def wait_final(engine: AsyncEngine, events: Sequence[dict[str, Any]]) -> None:
    async def final() -> bool:
        sql = "SELECT count(*) AS n FROM events WHERE id = ANY(:ids) AND status <> 'pending'"
        return int((await select(engine, sql, ids=ids(events)))[0]["n"]) == len(events)

    await wait_for(final, timeout=120, what=f"{len(events)} events to be final")


async def facts(engine: AsyncEngine, events: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Every fact of ``events``, the event known by its place in the stream (not its id or tenant):
    one list per table, so a duplicate row or a lost one shows."""
    place = {UUID(e["id"]): n for n, e in enumerate(events)}
    found = {}
    for table in FACT_TABLES:
        rows = await select(engine, f"SELECT * FROM {table} WHERE event_id = ANY(:ids)", ids=list(place))
        found[table] = sorted(
            repr((place[r["event_id"]], sorted((k, _plain(v)) for k, v in r.items() if k not in _NOT_CONTENT)))
            for r in rows
        )
    return found


_NOT_CONTENT = frozenset({"event_id", "tenant_id", "updated_at"})


def ids(events: Sequence[dict[str, Any]]) -> list[UUID]:
    return [UUID(e["id"]) for e in events]


async def select(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(text(sql), params)]
