"""`salesflow dlq list|show|redrive` on the real broker and database, with the worker and projection running.

A worker limited to 1 KiB events dead-letters an oversized (binary-mode) event beside two records that
are not events at all. After the fix (a worker with the default limit), the oversized one is redriven to
its original topic and partition with its original headers, and is processed; a record that is still
broken is dead-lettered again at its new position.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.bootstrap import event_producer
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import ROOT, Service, settings_env, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Dlq:
    settings: Settings
    engine: AsyncEngine
    worker: Service
    oversized_id: UUID
    start: Any

    @property
    def topic(self) -> str:
        return self.settings.topics.source(EventType.LEAD_CREATED)

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "salesflow.cli.main", "dlq", *args],
            env=settings_env(self.settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if ok:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(sql), params)]

    async def dead_letters(self) -> list[dict[str, Any]]:
        return await self.rows('SELECT * FROM dead_letters WHERE topic = :t ORDER BY "offset"', t=self.topic)

    async def by_reason(self, reason: str) -> list[dict[str, Any]]:
        return [r for r in await self.dead_letters() if r["reason"] == reason]


def oversized_binary_event() -> tuple[dict[str, Any], list[tuple[str, bytes]], bytes]:
    """A valid lead.created in binary mode (ce_* headers), its payload padded past 1 KiB."""
    event = event_dict(EventType.LEAD_CREATED, "dlq-tenant", lead_id="lead-big", notes="x" * 1500)
    headers = [(f"ce_{k}", str(v).encode()) for k, v in event.items() if k not in ("data", "datacontenttype")]
    return event, [*headers, ("content-type", b"application/json")], orjson.dumps(event["data"])


@pytest.fixture(scope="module")
async def dlq(settings_factory: SettingsFactory, service_factory: Any, database_url: str) -> AsyncIterator[Dlq]:
    from salesflow.db.engine import create_engine

    settings = settings_factory(max_event_bytes=1024)
    await create_topics(settings)
    service_factory("projection", settings.model_copy(update={"max_event_bytes": 256 * 1024}))
    worker = service_factory("worker", settings)
    event, headers, value = oversized_binary_event()
    missing_source = event_dict(EventType.LEAD_CREATED, "dlq-tenant", lead_id="lead-bad")
    del missing_source["data"]["source"]
    topic = settings.topics.source(EventType.LEAD_CREATED)
    async with event_producer(settings) as producer:
        for raw, key, extra in (
            (b"not json at all", b"dlq-tenant:lead-x", []),
            (orjson.dumps(missing_source), b"dlq-tenant:lead-bad", []),
            (value, b"dlq-tenant:lead-big", headers),
        ):
            await (await producer.send_raw(topic, raw, key=key, headers=extra))
    engine = create_engine(database_url)
    found = Dlq(settings, engine, worker, UUID(event["id"]), service_factory)

    async def three() -> bool:
        return len(await found.dead_letters()) == 3

    await wait_for(three, timeout=90, what="three dead letters")
    yield found
    await engine.dispose()


async def test_list_shows_each_dead_letter_with_its_reason(dlq: Dlq) -> None:
    listed = orjson.loads((await asyncio.to_thread(dlq.cli, "list", "--topic", dlq.topic, "--json")).stdout)
    assert sorted(r["reason"] for r in listed) == ["missing_field", "not_json", "too_large"]
    assert all(r["id"] == f"{dlq.topic}:{r['partition']}:{r['offset']}" and r["redriven_at"] is None for r in listed)
    only = orjson.loads(
        (await asyncio.to_thread(dlq.cli, "list", "--reason", "too_large", "--topic", dlq.topic, "--json")).stdout
    )
    assert [r["reason"] for r in only] == ["too_large"]
    table = (await asyncio.to_thread(dlq.cli, "list", "--topic", dlq.topic)).stdout
    assert "REASON" in table and "missing_field" in table and "data.source" in table


async def test_show_gives_the_headers_and_the_bytes(dlq: Dlq) -> None:
    (row,) = await dlq.by_reason("too_large")
    ident = f"{row['topic']}:{row['partition']}:{row['offset']}"
    shown = orjson.loads((await asyncio.to_thread(dlq.cli, "show", ident, "--json")).stdout)
    assert shown["headers"]["ce_id"] == str(dlq.oversized_id)
    assert shown["value_bytes"] == len(row["raw"]) > 1024 and shown["value"].startswith('{"lead_id":"lead-big"')
    assert "over the 1024 byte limit" in shown["detail"]
    text_out = (await asyncio.to_thread(dlq.cli, "show", ident)).stdout
    assert "ce_tenantid = dlq-tenant" in text_out
    missing = await asyncio.to_thread(dlq.cli, "show", f"{dlq.topic}:0:999999", ok=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


async def test_redrive_after_the_fix_processes_the_event(dlq: Dlq) -> None:
    dlq.worker.stop()
    dlq.start("worker", dlq.settings.model_copy(update={"max_event_bytes": 256 * 1024}))  # the fix
    (row,) = await dlq.by_reason("too_large")
    done = await asyncio.to_thread(dlq.cli, "redrive", "--reason", "too_large", "--topic", dlq.topic)
    assert f"redrove {dlq.topic}:{row['partition']}:{row['offset']} -> {dlq.topic}[{row['partition']}]@" in done.stdout

    async def processed() -> bool:
        found = await dlq.rows("SELECT status FROM events WHERE id = :id", id=dlq.oversized_id)
        return found == [{"status": "processed"}]

    await wait_for(processed, timeout=90, what="the redriven event to be processed")
    (after,) = await dlq.by_reason("too_large")
    assert after["redriven_at"] is not None
    pending = orjson.loads((await asyncio.to_thread(dlq.cli, "list", "--topic", dlq.topic, "--json")).stdout)
    assert "too_large" not in {r["reason"] for r in pending}
    listed = await asyncio.to_thread(dlq.cli, "list", "--all", "--topic", dlq.topic, "--json")
    everything = orjson.loads(listed.stdout)
    assert "too_large" in {r["reason"] for r in everything}
    again = await asyncio.to_thread(dlq.cli, "redrive", "--reason", "too_large", "--topic", dlq.topic)
    assert "0 dead letter(s) redriven" in again.stdout  # already redriven: only with --again


async def test_a_record_still_broken_is_dead_lettered_again(dlq: Dlq) -> None:
    (row,) = await dlq.by_reason("not_json")
    ident = f"{row['topic']}:{row['partition']}:{row['offset']}"
    await asyncio.to_thread(dlq.cli, "redrive", ident)

    async def twice() -> list[dict[str, Any]]:
        found = await dlq.by_reason("not_json")
        return found if len(found) == 2 else []

    first, second = await wait_for(twice, timeout=90, what="the record to be dead-lettered again")
    assert first["redriven_at"] is not None and second["redriven_at"] is None
    assert second["raw"] == first["raw"] and second["partition"] == first["partition"]
    assert second["offset"] > first["offset"]
    assert second["headers"]["salesflow.redrive.from"] == ident


async def test_redrive_needs_a_choice_and_known_ids(dlq: Dlq) -> None:
    nothing = await asyncio.to_thread(dlq.cli, "redrive", ok=False)
    assert nothing.returncode == 2 and "name the dead letters" in nothing.stderr
    unknown = await asyncio.to_thread(dlq.cli, "redrive", f"{dlq.topic}:0:999999", ok=False)
    assert unknown.returncode == 1 and "no such dead letter" in unknown.stderr
    malformed = await asyncio.to_thread(dlq.cli, "redrive", "nope", ok=False)
    assert malformed.returncode == 2 and "topic:partition:offset" in malformed.stderr
