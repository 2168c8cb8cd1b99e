"""What the outbox tests share (no tests here): a database of a service's own with the outbox table,
the relay as a ``salesflow outbox relay`` process, a writer that commits typed events, and a reader
of the source topics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from confluent_kafka import Consumer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from salesflow.db.engine import create_engine
from salesflow.outbox import OutboxEventBus
from salesflow.outbox.migrate import upgrade as migrate_outbox
from salesflow.producer.typed_events import TYPED_EVENTS, ProducerEvent
from salesflow.settings import Settings
from tests.conftest import _admin_sql
from tests.harness import ROOT, Service, settings_env, wait_for
from tests.infra import Endpoints


async def service_database(admin_url: str) -> str:
    """A fresh database, as an upstream service has, with the outbox migration applied."""
    admin = make_url(admin_url)
    name = f"sf_outbox_{uuid.uuid4().hex[:10]}"
    await _admin_sql(admin, f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate_outbox, url)
    return url


@asynccontextmanager
async def service_db(endpoints: Endpoints) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A service database with the outbox table (its URL and an engine), dropped afterwards."""
    url = await service_database(endpoints.database_url)
    engine = create_engine(url, pool_size=10)
    try:
        yield url, engine
    finally:
        await engine.dispose()
        await _admin_sql(
            make_url(endpoints.database_url), f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'
        )


class Relay(Service):
    """``salesflow outbox relay`` as a child process, draining ``outbox_url``."""

    def __init__(self, settings: Settings, log_dir: Path, outbox_url: str, **options: Any) -> None:
        super().__init__(f"relay-{uuid.uuid4().hex[:4]}", settings, log_dir)
        self.env = {
            "SALESFLOW_OUTBOX_DATABASE_URL": outbox_url,
            "SALESFLOW_OUTBOX_METRICS_PORT": "0",
            "SALESFLOW_LOG_FORMAT": "text",
            **{f"SALESFLOW_OUTBOX_{name.upper()}": str(value) for name, value in options.items()},
        }

    def start(self) -> Relay:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "salesflow.cli.main", "outbox", "relay"],
            env={**settings_env(self.settings), **self.env},
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        return self

    def times_logged(self, text: str) -> int:
        return self.log_path.read_text(errors="replace").count(text) if self.log_path.exists() else 0


# SALESFLOW_TEST_RELAY_BATCH_SIZE=5000 (a relay that drains in a few batches) or =50 (one that takes
# many): every relay the outbox tests start uses it, so a test that depends on the relay's pace shows it.
BATCH_SIZE_OVERRIDE = os.environ.get("SALESFLOW_TEST_RELAY_BATCH_SIZE")


class Relays:
    """Relays started by one test; ``stop_all`` at its end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Relay] = []

    def start(self, settings: Settings, outbox_url: str, **options: Any) -> Relay:
        if BATCH_SIZE_OVERRIDE:  # the whole outbox suite with a relay made artificially fast or slow
            options["batch_size"] = int(BATCH_SIZE_OVERRIDE)
        relay = Relay(settings, self.log_dir / uuid.uuid4().hex[:6], outbox_url, **options).start()
        self.started.append(relay)
        return relay

    def stop_all(self) -> None:
        for relay in self.started:
            relay.stop()


def typed(event: dict[str, Any]) -> ProducerEvent:
    """A demo generator's CloudEvent dict as the typed event a service would have built."""
    data = {k: v for k, v in event["data"].items() if v is not None}
    return TYPED_EVENTS[event["type"]](
        tenant_id=event["tenantid"], occurred_at=event["time"], event_id=event["id"], **data
    )


async def commit_events(
    engine: AsyncEngine, settings: Settings, events: list[ProducerEvent], per_txn: int = 50
) -> None:
    """Commit ``events`` into the outbox, ``per_txn`` to a transaction, as a busy service would."""
    sessions = async_sessionmaker(engine)
    for start in range(0, len(events), per_txn):
        async with sessions() as session, session.begin():
            bus = OutboxEventBus(session, settings.topics)
            for event in events[start : start + per_txn]:
                await bus.publish(event, request_id=f"req-{start}")


def _asyncpg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def outbox_rows(url: str) -> int:
    conn = await asyncpg.connect(_asyncpg_url(url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM salesflow_outbox"))
    finally:
        await conn.close()


async def wait_drained(url: str, timeout: float = 120) -> None:
    async def empty() -> bool:
        return await outbox_rows(url) == 0

    await wait_for(empty, timeout=timeout, every=0.2, what="the outbox to be drained")


class DeleteBarrier:
    """One outbox row held locked (``FOR UPDATE``, in a transaction left open), so the relay publishes the
    batch that holds it, has every record acknowledged, and then waits in its ``DELETE``. A relay killed
    while it waits dies mid-batch by construction, on a machine of any speed: its records are on Kafka
    and their rows are still in the outbox."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: asyncpg.Connection | None = None
        self.held: list[str] = []  # the event id of each row held, in order

    async def hold(self, offset: int) -> str:
        """Lock the row ``offset`` rows behind the outbox's head (the last one if fewer); its event id."""
        self.conn = await asyncpg.connect(_asyncpg_url(self.url))
        await self.conn.execute("BEGIN")
        row = await self.conn.fetchrow(
            "SELECT id, value FROM salesflow_outbox WHERE id >= "
            "(SELECT coalesce(max(id), 0) FROM (SELECT id FROM salesflow_outbox ORDER BY id LIMIT $1 + 1) head) "
            "ORDER BY id LIMIT 1 FOR UPDATE",
            offset,
        )
        assert row is not None, "the outbox is empty: nothing to hold"
        self.held.append(orjson.loads(row["value"])["id"])
        return self.held[-1]

    async def relay_waiting(self, timeout: float = 120) -> int:
        """The backend pid of the relay's ``DELETE``, once it waits on the held row."""

        async def waiting() -> int | None:
            assert self.conn is not None
            await self.conn.execute("SELECT pg_stat_clear_snapshot()")  # else the open transaction's stays
            pid: int | None = await self.conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND query LIKE 'DELETE FROM salesflow_outbox%'"
            )
            return pid

        pid: int = await wait_for(waiting, timeout=timeout, every=0.05, what="the relay's DELETE to wait on the row")
        return pid

    async def release(self, relay_backend: int) -> None:
        """After the relay's SIGKILL: end its waiting ``DELETE`` (a statement its client will never read the
        answer of; waiting on a lock, Postgres does not look for the client), then let go of the row. The
        batch's rows stay, as if the relay had died between the acknowledgement and the ``DELETE``."""
        assert self.conn is not None
        await self.conn.fetchval("SELECT pg_terminate_backend($1, 10000)", relay_backend)
        await self.conn.execute("ROLLBACK")
        await self.conn.close()
        self.conn = None


@dataclass
class Received:
    """One record read back from a source topic."""

    topic: str
    partition: int
    offset: int
    key: bytes
    event: dict[str, Any]
    headers: dict[str, bytes]


def read_topics(settings: Settings, expected: int, timeout: float = 60, settle: float = 2.0) -> list[Received]:
    """Every record on the source topics of ``settings``, read from the start until ``expected`` have
    come and then ``settle`` seconds more without a new one (so extra records would be seen too).
    Blocking: run it in a thread."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"outbox-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(list(settings.topics.sources))
    found: list[Received] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                if len(found) >= expected and time.monotonic() - last > settle:
                    break
                continue
            last = time.monotonic()
            found.append(
                Received(
                    topic=msg.topic() or "",
                    partition=msg.partition() or 0,
                    offset=msg.offset() or 0,
                    key=msg.key() or b"",
                    event=orjson.loads(msg.value() or b"null"),
                    headers=_headers(msg.headers()),
                )
            )
    finally:
        consumer.close()
    return found


def _headers(found: Any) -> dict[str, bytes]:
    return {name: value or b"" for name, value in found or []}


async def received(settings: Settings, expected: int, **options: Any) -> list[Received]:
    return await asyncio.to_thread(read_topics, settings, expected, **options)
