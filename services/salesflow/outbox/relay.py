"""The relay: publishes committed outbox rows in id order, deleting each only after the broker's ack.

Several relays may run; the one holding a Postgres advisory lock (on a connection of its own) is
the leader and the only one that publishes. A leader that dies loses its connection, Postgres
releases the lock, and a standby, trying every ``leader_check_seconds``, takes over. The leader
LISTENs on that same connection, so a commit wakes it within milliseconds; it also polls every
``poll_interval_seconds`` in case a notification is missed.

At least once: a crash between the broker's ack and the delete publishes those rows again; the
events keep their ids, and everything downstream is idempotent by event id.

Errors go through ``failure_policy``. An unavailable database is retried with ``db_retry_policy``
until it is back; any other database error (the table not migrated, a privilege revoked) ends the
relay with one line naming it (``RelayFailed``). A batch Kafka did not acknowledge keeps its rows
and a fresh producer sends them again after the same backoff; an authorization error ends the relay.

A topic the cluster does not have holds back its own rows only. They stay in the table, named in
the log and counted (``salesflow_outbox_held_rows{topic}``), and are tried again every
``unknown_topic_recheck_seconds``, so they go out without a restart once the topic is created;
every other topic's rows go on. Ending the relay instead would stop every event of the service for
one topic's mistake (a new event type deployed before its topic), and a restart would stop it
again. Per-key order is unharmed: Kafka orders records per topic partition, and no record of the
held topic is sent out of its order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import orjson
from confluent_kafka import KafkaException

from salesflow.db.engine import asyncpg_connect_args
from salesflow.errors import SalesflowError
from salesflow.failure_policy import classify_db_error, classify_kafka_error, db_retry_policy, sleep_unless_stopped
from salesflow.outbox.outbox_settings import OutboxSettings
from salesflow.outbox.publisher import BatchResult, Publisher, Row, relay_producer_options
from salesflow.outbox.relay_metrics import OutboxMetrics
from salesflow.outbox.schema import CHANNEL, TABLE
from salesflow.settings import Settings
from salesflow.tracing import state as tracing

log = logging.getLogger(__name__)

LEADER_LOCK = 0x5A1E5F10_0B0C5  # one bigint advisory lock per database: the relay leader
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

# Headers as JSON text (decoded once per distinct value); `partition` (o0002: API replays) if the table has it.
_SELECT = (
    f"SELECT id, topic, key, value, headers::text{{}} FROM {TABLE} WHERE topic <> ALL($2::text[]) ORDER BY id LIMIT $1"
)
_HAS_PARTITION = f"SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('{TABLE}') AND attname = 'partition'"
_DELETE = f"DELETE FROM {TABLE} WHERE id = ANY($1::bigint[])"
_BACKLOG = f"SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM {TABLE}"
_HELD = f"SELECT count(*) FROM {TABLE} WHERE topic = $1"


class RelayFailed(SalesflowError):
    """An error no retry can mend: the relay stops, and the message says why and what to do."""


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
        self.retry = db_retry_policy(settings)
        self._wake = asyncio.Event()
        self._backlog_at = 0.0
        self._connected = False
        self._known: set[str] = set()  # topics the cluster has (checked since the last failure)
        self._held: dict[str, float] = {}  # topics it does not have -> when to check again
        self._select = _SELECT.format("")

    async def run(self) -> None:
        """Stand by or lead until stopped. An unavailable database is retried; any other database
        error raises ``RelayFailed``."""
        attempt = 0
        while not self.stopping.is_set():
            self._connected = False
            try:
                await self._stand_by_or_lead()
            except DATABASE_ERRORS as exc:
                if classify_db_error(exc) != "transient":
                    raise RelayFailed(self._database_failure(exc)) from exc
                attempt = 1 if self._connected else attempt + 1
                self.metrics.errors.labels(stage="database").inc()
                delay = self.retry.delay(attempt)
                log.warning(
                    "outbox relay: database unavailable (attempt %d), retrying in %.1fs: %s", attempt, delay, exc
                )
                await sleep_unless_stopped(delay, self.stopping)
            finally:
                self.metrics.leader.set(0)

    def _database_failure(self, exc: BaseException) -> str:
        database = asyncpg_connect_args(self.database_url)[0].database
        what = f"{type(exc).__name__} (SQLSTATE {getattr(exc, 'sqlstate', None) or '-'}): {exc}"
        if isinstance(exc, asyncpg.UndefinedTableError):
            hint = f"run `salesflow outbox migrate` against database {database}"
        elif isinstance(exc, asyncpg.InsufficientPrivilegeError):
            hint = f"grant the relay's role SELECT and DELETE on {TABLE} in database {database}"
        else:
            hint = f"database {database}; not an outage, so not retried"
        return f"outbox relay stopped: {what}; {hint}"

    async def _stand_by_or_lead(self) -> None:
        lock = await connect(self.database_url)
        self._connected = True
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
        self._select = _SELECT.format(", partition" if await work.fetchval(_HAS_PARTITION) else "")
        publisher = self._publisher()
        checked = time.monotonic()
        failures = 0
        try:
            while not self.stopping.is_set():
                if time.monotonic() - checked > self.config.leader_check_seconds:
                    await lock.execute("SELECT 1")  # still connected, so still holding the lock
                    checked = time.monotonic()
                self._wake.clear()
                self._release_held()
                published = await self._relay_batch(work, publisher)
                if published is None:  # the producer failed: a fresh one sends the rest again
                    failures += 1
                    publisher = await self._replace(publisher)
                    await sleep_unless_stopped(self.retry.delay(failures), self.stopping)
                    continue
                failures = 0
                await self._update_backlog(work)
                if published == 0:
                    await self._sleep_until_woken()
        finally:
            await asyncio.to_thread(publisher.close, 5)
            await work.close(timeout=5)
            log.info("outbox relay: stepped down")

    async def _relay_batch(self, work: asyncpg.Connection, publisher: Publisher) -> int | None:
        """Publish one batch; the number of rows read, or None after a Kafka failure."""
        rows: list[Row] = list(await work.fetch(self._select, self.config.batch_size, list(self._held)))
        if not rows:
            return 0
        started = time.time_ns()
        try:
            sendable = await self._of_known_topics(work, publisher, rows)
            result = await asyncio.to_thread(publisher.publish, sendable, self.config.message_timeout_seconds)
            if tracing.TRACER is not None:  # once per batch; the context itself is in each row's value
                from salesflow.tracing.relay_spans import trace_sent

                trace_sent(tracing.TRACER, sendable, result, started)
        except KafkaException as exc:
            self.metrics.errors.labels(stage="kafka").inc()
            log.warning("outbox relay: %d records not acknowledged (%s); sending them again", len(rows), exc)
            return None
        if result.acknowledged:
            await work.execute(_DELETE, result.acknowledged)
            _count_published(self.metrics, sendable, None if result.error is None else set(result.acknowledged))
        if result.error is None:
            return len(rows)
        await self._failed(work, result, len(sendable))
        return None

    async def _of_known_topics(self, work: asyncpg.Connection, publisher: Publisher, rows: list[Row]) -> list[Row]:
        """``rows`` but those of topics the cluster does not have (which are held from now on)."""
        for topic in {row[1] for row in rows} - self._known:
            timeout = self.config.message_timeout_seconds
            code = await asyncio.to_thread(publisher.topic_error, topic, timeout)
            kind = classify_kafka_error(code) if code else None
            if kind == "unknown_topic":
                await self._hold(work, topic)
            elif kind == "fatal":
                raise RelayFailed(f"outbox relay stopped: Kafka refused topic {topic}: error {code}; not retried")
            else:  # there, or a passing state (a leader being elected) that producing waits out
                self._known.add(topic)
                self.metrics.held_rows.labels(topic=topic).set(0)
        return [row for row in rows if row[1] not in self._held] if self._held else rows

    async def _failed(self, work: asyncpg.Connection, result: BatchResult, sent: int) -> None:
        """After a batch with failed records: hold unknown topics, stop on a fatal error, else log."""
        for topic in result.unknown_topics:
            await self._hold(work, topic)
        self._known.clear()  # a topic deleted since: checked again before the next send
        kind = classify_kafka_error(result.code)
        if kind == "fatal":
            raise RelayFailed(f"outbox relay stopped: Kafka refused the records: {result.error}; not retried")
        if kind == "transient":
            self.metrics.errors.labels(stage="kafka").inc()
            log.warning(
                "outbox relay: %d of %d records not acknowledged (%s); sending them again",
                sent - len(result.acknowledged),
                sent,
                result.error,
            )

    async def _hold(self, work: asyncpg.Connection, topic: str) -> None:
        self._known.discard(topic)
        self._held[topic] = time.monotonic() + self.config.unknown_topic_recheck_seconds
        rows = int(await work.fetchval(_HELD, topic))
        self.metrics.held_rows.labels(topic=topic).set(rows)
        self.metrics.errors.labels(stage="unknown_topic").inc()
        log.error(
            "outbox relay: topic %s does not exist on the cluster; its %d rows stay in the outbox (checked "
            "again in %g s), the other topics' rows go on. Create it (salesflow topics create), or see "
            "SALESFLOW_TOPIC_PREFIX",
            topic,
            rows,
            self.config.unknown_topic_recheck_seconds,
        )

    def _release_held(self) -> None:
        now = time.monotonic()
        self._held = {topic: until for topic, until in self._held.items() if until > now}

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

    def _publisher(self) -> Publisher:
        return Publisher(relay_producer_options(self.settings, self.config.message_timeout_seconds))

    async def _replace(self, publisher: Publisher) -> Publisher:
        # Records still queued in the old producer are abandoned: their rows stay and are sent again.
        await asyncio.to_thread(publisher.close, 0)
        return self._publisher()


async def _backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    found = await conn.fetchrow(_BACKLOG)
    assert found is not None  # an aggregate always returns one row
    return int(found[0]), float(found[1])


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _count_published(metrics: OutboxMetrics, rows: list[Row], acknowledged: set[int] | None) -> None:
    """Records acknowledged per topic; ``acknowledged`` None: every row was."""
    per_topic: dict[str, int] = {}
    for row in rows:
        if acknowledged is None or row[0] in acknowledged:
            per_topic[row[1]] = per_topic.get(row[1], 0) + 1
    for topic, count in per_topic.items():
        metrics.published.labels(topic=topic).inc(count)
