"""The relay: publishes committed outbox rows in id order, deleting each only after the broker's ack.

Several relays may run; the one holding a Postgres advisory lock (on a connection of its own) is
the leader and the only one that publishes. A leader that dies loses its connection, Postgres
releases the lock, and a standby, trying every ``leader_check_seconds``, takes over. The leader
LISTENs on that same connection, so a commit wakes it within milliseconds; it also polls every
``poll_interval_seconds`` in case a notification is missed.

At least once: a crash between the broker's ack and the delete publishes those rows again; the
events keep their ids, and everything downstream is idempotent by event id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import orjson
from confluent_kafka import KafkaException, Producer

from salesflow.db.engine import asyncpg_connect_args
from salesflow.failure_policy import RetryPolicy, sleep_unless_stopped
from salesflow.outbox.metrics import OutboxMetrics
from salesflow.outbox.publisher import publish_batch, relay_producer_options
from salesflow.outbox.schema import CHANNEL, TABLE
from salesflow.outbox.settings import OutboxSettings
from salesflow.settings import Settings

log = logging.getLogger(__name__)

LEADER_LOCK = 0x5A1E5F10_0B0C5  # one bigint advisory lock per database: the relay leader
BACKOFF = RetryPolicy(max_attempts=1, backoff_seconds=0.5, backoff_max_seconds=5.0)

_SELECT = f"SELECT id, topic, key, value, headers FROM {TABLE} ORDER BY id LIMIT $1"
_DELETE = f"DELETE FROM {TABLE} WHERE id = ANY($1::bigint[])"
_BACKLOG = f"SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM {TABLE}"


async def connect(database_url: str) -> asyncpg.Connection:
    """An asyncpg connection for a SQLAlchemy-style URL (TLS parameters applied as ``db.engine`` does)."""
    url, args = asyncpg_connect_args(database_url)
    conn: asyncpg.Connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database, **args
    )
    await conn.set_type_codec("jsonb", encoder=_json, decoder=orjson.loads, schema="pg_catalog")
    return conn


async def backlog(database_url: str) -> tuple[int, float]:
    """Rows in the outbox and the age of the oldest, in seconds (0 when empty)."""
    conn = await connect(database_url)
    try:
        return await _backlog(conn)
    finally:
        await conn.close()


class Relay:
    """One relay process: stands by, leads when it holds the lock, stops when ``stopping`` is set."""

    def __init__(
        self, settings: Settings, config: OutboxSettings, metrics: OutboxMetrics, stopping: asyncio.Event
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = metrics
        self.stopping = stopping
        self.database_url = config.url(settings.database_url)
        self._wake = asyncio.Event()
        self._backlog_at = 0.0

    async def run(self) -> None:
        """Stand by or lead until stopped; database errors are logged, counted and retried."""
        attempt = 0
        while not self.stopping.is_set():
            try:
                await self._stand_by_or_lead()
                attempt = 0
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                attempt += 1
                self.metrics.errors.labels(stage="database").inc()
                log.warning("outbox relay: database error, retrying: %s: %s", type(exc).__name__, exc)
                await sleep_unless_stopped(BACKOFF.delay(min(attempt, 5)), self.stopping)
            finally:
                self.metrics.leader.set(0)

    async def _stand_by_or_lead(self) -> None:
        lock = await connect(self.database_url)
        try:
            while not self.stopping.is_set():
                if await lock.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                    await self._lead(lock)
                    return
                await self._update_backlog(lock)
                await sleep_unless_stopped(self.config.leader_check_seconds, self.stopping)
        finally:
            await lock.close(timeout=5)

    async def _lead(self, lock: asyncpg.Connection) -> None:
        log.info("outbox relay: leader")
        self.metrics.leader.set(1)
        await lock.add_listener(CHANNEL, lambda *_: self._wake.set())
        work = await connect(self.database_url)
        producer = self._producer()
        checked = time.monotonic()
        try:
            while not self.stopping.is_set():
                if time.monotonic() - checked > self.config.leader_check_seconds:
                    await lock.execute("SELECT 1")  # still connected, so still holding the lock
                    checked = time.monotonic()
                self._wake.clear()
                published = await self._relay_batch(work, producer)
                if published is None:  # the producer failed: a fresh one sends the rest again
                    producer = self._replace(producer)
                    await sleep_unless_stopped(BACKOFF.delay(2), self.stopping)
                elif published == 0:
                    await self._update_backlog(work)
                    await self._sleep_until_woken()
                else:
                    await self._update_backlog(work)
        finally:
            await asyncio.to_thread(producer.flush, 5)
            await work.close(timeout=5)
            log.info("outbox relay: stepped down")

    async def _relay_batch(self, work: asyncpg.Connection, producer: Producer) -> int | None:
        """Publish one batch; the number of rows published and deleted, or None after a Kafka failure."""
        rows = await work.fetch(_SELECT, self.config.batch_size)
        if not rows:
            return 0
        try:
            result = await asyncio.to_thread(publish_batch, producer, rows, self.config.message_timeout_seconds)
        except KafkaException as exc:
            self.metrics.errors.labels(stage="kafka").inc()
            log.warning("outbox relay: the producer failed: %s", exc)
            return None
        if result.acknowledged:
            await work.execute(_DELETE, result.acknowledged)
            _count_published(self.metrics, rows, set(result.acknowledged))
        if result.error is not None:
            self.metrics.errors.labels(stage="kafka").inc()
            log.warning(
                "outbox relay: %d of %d records not acknowledged (%s); sending them again",
                len(rows) - len(result.acknowledged),
                len(rows),
                result.error,
            )
            return None
        return len(rows)

    async def _sleep_until_woken(self) -> None:
        """Until a NOTIFY, the poll interval, or a stop request, whichever comes first."""
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self.stopping.wait())]
        try:
            await asyncio.wait(waits, timeout=self.config.poll_interval_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _update_backlog(self, conn: asyncpg.Connection) -> None:
        """Backlog gauges, at most once a second (a count over a large backlog is not free)."""
        if time.monotonic() - self._backlog_at < 1.0:
            return
        self._backlog_at = time.monotonic()
        rows, age = await _backlog(conn)
        self.metrics.backlog_rows.set(rows)
        self.metrics.oldest_age.set(age)

    def _producer(self) -> Producer:
        return Producer(relay_producer_options(self.settings, self.config.message_timeout_seconds))

    def _replace(self, producer: Producer) -> Producer:
        # Records still queued in the old producer are abandoned: their rows stay and are sent again.
        producer.purge()
        producer.flush(0)
        return self._producer()


async def _backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    found = await conn.fetchrow(_BACKLOG)
    assert found is not None  # an aggregate always returns one row
    return int(found[0]), float(found[1])


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _count_published(metrics: OutboxMetrics, rows: Any, acknowledged: set[int]) -> None:
    per_topic: dict[str, int] = {}
    for row in rows:
        if row["id"] in acknowledged:
            per_topic[row["topic"]] = per_topic.get(row["topic"], 0) + 1
    for topic, count in per_topic.items():
        metrics.published.labels(topic=topic).inc(count)
