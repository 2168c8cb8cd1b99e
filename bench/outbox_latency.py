"""The commit-to-Kafka latency of ``bench.outbox``: writers commit one event per transaction, on a
fixed schedule, in processes of their own; each commit's moment against the broker's append time."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import asyncpg
from confluent_kafka import Consumer
from sqlalchemy.engine import make_url

from bench.outbox_relay import typed
from bench.stack import connect
from salesflow.outbox import outbox_row
from salesflow.outbox.bus import CONTENT_TYPE, KEY_LOCK_NAMESPACE
from salesflow.producer.demo import DemoGenerator
from salesflow.settings import Settings

# OutboxEventBus's statement (bus._INSERT) for asyncpg: the key's transaction lock, then the insert.
INSERT = (
    "INSERT INTO salesflow_outbox (topic, key, value, headers) SELECT $1, $2, $3, CAST($4 AS jsonb) "
    "FROM (SELECT pg_advisory_xact_lock($5, hashtext($6))) AS serialised"
)
HEADERS = json.dumps([CONTENT_TYPE])


def writer_process(
    url: str, prefix: str, events: list[dict[str, Any]], connections: int, starts_at: float, every: float
) -> dict[str, float]:
    """One writer process: ``connections`` connections take turns, event k committed (one transaction
    each, the bus's own statement: per-key lock, then the insert) at ``starts_at + k * every`` (wall
    clock). The moment each commit returned, by event id."""
    topics = Settings(topic_prefix=prefix).topics
    rows = [(str(e["id"]), outbox_row(typed(e), topics)) for e in events]

    async def write(conn: asyncpg.Connection, first: int) -> dict[str, float]:
        commits: dict[str, float] = {}
        for k in range(first, len(rows), connections):
            event_id, row = rows[k]
            await asyncio.sleep(max(0.0, starts_at + k * every - time.time()))
            async with conn.transaction():
                await conn.execute(INSERT, row.topic, row.key, row.value, HEADERS, KEY_LOCK_NAMESPACE, row.key.decode())
            commits[event_id] = time.time()
        return commits

    async def main() -> dict[str, float]:
        conns = [await connect(make_url(url)) for _ in range(connections)]  # before the clock starts
        try:
            shares = await asyncio.gather(*(write(conn, n) for n, conn in enumerate(conns)))
        finally:
            for conn in conns:
                await conn.close()
        return {k: v for share in shares for k, v in share.items()}

    return asyncio.run(main())


async def commit_latency(
    url: str, settings: Settings, rate: float, duration: float, writers: int, processes: int = 2
) -> dict[str, Any]:
    """``writers`` connections in ``processes`` processes commit one event per transaction, together at
    ``rate``; commit -> broker append time, in ms."""
    events = [{**e, "id": str(uuid.uuid4())} for e in DemoGenerator(seed=11).events(int(rate * duration))]
    every = processes / rate
    starts_at = time.time() + 5  # every writer has built its events and connected
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        shares = [
            loop.run_in_executor(
                pool,
                writer_process,
                url,
                settings.topic_prefix,
                events[n::processes],
                writers // processes,
                starts_at + n / rate,
                every,
            )
            for n in range(processes)
        ]
        commits = {k: v for share in await asyncio.gather(*shares) for k, v in share.items()}
    achieved = len(commits) / (max(commits.values()) - starts_at)
    appended = await asyncio.to_thread(read_append_times, settings, set(commits))
    latencies = sorted((appended[i] - commits[i]) * 1000 for i in commits if i in appended)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "rate": rate,
        "rate_achieved": round(achieved),
        "writers": writers,
        "p50_ms": round(quantiles[49], 1),
        "p95_ms": round(quantiles[94], 1),
        "p99_ms": round(quantiles[98], 1),
        "max_ms": round(latencies[-1], 1),
        "missing": len(commits) - len(latencies),
    }


def read_append_times(settings: Settings, ids: set[str]) -> dict[str, float]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"bench-outbox-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(list(settings.topics.sources))
    found: dict[str, float] = {}
    deadline = time.monotonic() + 120
    try:
        while len(found) < len(ids) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                event_id = json.loads(msg.value() or b"{}")["id"]
                if event_id in ids and event_id not in found:
                    found[event_id] = msg.timestamp()[1] / 1000
    finally:
        consumer.close()
    return found
