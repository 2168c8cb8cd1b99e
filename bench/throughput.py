"""The short measures: processor and projection throughput, and the raw COPY limit beside them.

Each measure starts from data already in place (records on the topics, rows in memory), so it times
the service's steady work, not the load. Start and end are taken from the data itself where it can
(record timestamps), else from polling Postgres on the same host clock.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import kafka_io, services
from bench.kafka_io import Offsets
from bench.stack import BenchStack
from salesflow.db.schema import FACT_TABLES, metadata
from salesflow.domain.records import RecordIn
from salesflow.projection.poll_groups import Batch
from salesflow.projection.rows import fact_rows, outcome_rows, pending_row
from salesflow.settings import Settings
from tests.harness import settings_env

PROJECTION_TABLES = ("events", *(t.name for t in FACT_TABLES.values()), "dead_letters")


@dataclass
class ProcessorRun:
    events_per_s: float
    peak_rss_mb: float
    outcomes_start: Offsets
    outcomes_stop: Offsets


async def processor_run(
    source: Settings, count: int, logs: Path, timeout: float, *, engine: str = "faust", workers: int = 1
) -> ProcessorRun:
    """``workers`` worker processes of ``engine``, a fresh consumer group, ``count`` events already on
    the source topics: events/s (their sum) from the first outcome record to the last (their
    timestamps are the workers' sends)."""
    tag = uuid.uuid4().hex[:6]
    settings = source.model_copy(
        update={
            "processor_group": f"{source.processor_group}-{tag}",
            "worker_data_dir": f"{source.worker_data_dir}-{tag}",
            "worker_engine": engine,
        }
    )
    outcomes = settings.topics.outcomes
    start = await kafka_io.end_offsets(settings, [outcomes])
    running = [
        services.start(
            "worker",
            settings.model_copy(update={"worker_data_dir": f"{settings.worker_data_dir}-{n}"}),
            logs / f"worker-{tag}-{n}",
        )
        for n in range(workers)
    ]
    try:
        seen, first_ms, last_ms = await kafka_io.count_until(settings, outcomes, start, count, timeout)
    finally:
        peak = max(worker.stop() for worker in running)
    stop = await kafka_io.end_offsets(settings, [outcomes])
    return ProcessorRun((seen - 1) / max((last_ms - first_ms) / 1000, 1e-3), peak, start, stop)


def projection_rows(records: list[Any], settings: Settings) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """The final rows the projection writes for these source and outcome records, per table, built
    with the projection's own row code: what a raw COPY must write to be comparable."""
    batch = Batch()
    for record in records:
        rec = RecordIn(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
            tuple(record.headers or ()),
        )
        if rec.topic == settings.topics.outcomes:
            batch.add(outcome_rows(rec))
        elif (pending := pending_row(rec, settings.max_event_bytes)) is not None:
            batch.add(pending)
    events = []
    for outcome in batch.outcomes.values():
        pending = batch.pending.get(outcome.event_id)
        events.append({**outcome.event, "payload": pending.row["payload"] if pending else None})
    tables = {"events": events}
    for kind, rows in fact_rows(list(batch.outcomes.values())).items():
        tables[FACT_TABLES[kind].name] = rows
    return tables, len(batch.outcomes)


async def raw_copy(stack: BenchStack, tables: dict[str, list[dict[str, Any]]]) -> float:
    """The raw limit: asyncpg ``copy_records_to_table`` of the same rows into empty tables of the same
    shape (``LIKE ... INCLUDING ALL``: same columns, keys and indexes), in one transaction. Rows/s."""
    conn = await stack.connect()
    try:
        await _empty_copies(conn, "raw_", tables)
        started = time.perf_counter()
        async with conn.transaction():
            for name, rows in tables.items():
                columns, records = _as_records(rows)
                await conn.copy_records_to_table(f"raw_{name}", records=records, columns=columns)
        elapsed = time.perf_counter() - started
        return sum(len(rows) for rows in tables.values()) / elapsed
    finally:
        await conn.close()


async def raw_upsert(stack: BenchStack, tables: dict[str, list[dict[str, Any]]]) -> float:
    """The idempotent-write floor: the same rows as ``raw_copy``, but written the only way a replay
    cannot double count, as upserts: binary COPY into a staging table, then one
    ``INSERT ... SELECT ... ON CONFLICT (primary key) DO UPDATE`` per table, into empty tables of the
    same shape, in one transaction. No tenant guard, no status order, no Kafka, no parsing: an upper
    bound for any projection that keeps the replay guarantee. Rows/s."""
    conn = await stack.connect()
    try:
        await _empty_copies(conn, "raw_up_", tables)
        started = time.perf_counter()
        async with conn.transaction():
            for name, rows in tables.items():
                columns, records = _as_records(rows)
                keys = [c.name for c in metadata.tables[name].primary_key.columns]
                listed = ", ".join(columns)
                updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
                await conn.execute(f"CREATE TEMP TABLE stage_{name} (LIKE {name} INCLUDING DEFAULTS) ON COMMIT DROP")
                await conn.copy_records_to_table(f"stage_{name}", records=records, columns=columns)
                await conn.execute(
                    f"INSERT INTO raw_up_{name} ({listed}) SELECT {listed} FROM stage_{name}"
                    f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
                )
        elapsed = time.perf_counter() - started
        for name, rows in tables.items():  # a floor that wrote less than it was given measures nothing
            written = await conn.fetchval(f"SELECT count(*) FROM raw_up_{name}")
            if written != len(rows):
                raise RuntimeError(f"raw upsert into {name}: {written} rows of {len(rows)}")
        return sum(len(rows) for rows in tables.values()) / elapsed
    finally:
        await conn.close()


async def _empty_copies(conn: Any, prefix: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """An empty ``{prefix}{name}`` of the same shape (columns, keys, indexes) for each table."""
    for name in tables:
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {prefix}{name} (LIKE {name} INCLUDING ALL)")
        await conn.execute(f"TRUNCATE {prefix}{name}")


def _as_records(rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows' columns, and each row's values in that order (what COPY takes)."""
    columns = list(rows[0])
    return columns, [tuple(row[c] for c in columns) for row in rows]


@dataclass
class ProjectionRun:
    rows_per_s: float
    peak_rss_mb: float
    seconds: float


async def projection_run(
    stack: BenchStack, settings: Settings, events: int, facts: int, logs: Path, timeout: float
) -> ProjectionRun:
    """One projection process, a fresh group, empty tables, records already on its topics: rows/s of
    final event rows plus fact rows, from the first write (the first batch's transaction time,
    ``events.received_at``) to the poll that sees every row (Postgres and us: one host, one clock)."""
    conn = await stack.connect()
    tag = uuid.uuid4().hex[:6]
    try:
        await conn.execute(f"TRUNCATE {', '.join(PROJECTION_TABLES)}")
        projection = services.start(
            "projection",
            settings.model_copy(update={"projection_group": f"{settings.projection_group}-{tag}"}),
            logs / f"projection-{tag}",
        )
        try:
            ended = await _wait_for_rows(conn, events, facts, timeout)
        finally:
            peak = projection.stop()
        started = await conn.fetchval("SELECT extract(epoch FROM min(received_at)) FROM events")
        seconds = ended - float(started)
        return ProjectionRun((events + facts) / seconds, peak, seconds)
    finally:
        await conn.close()


FACT_COUNT = " + ".join(f"(SELECT count(*) FROM {t.name})" for t in FACT_TABLES.values())


async def _wait_for_rows(conn: Any, events: int, facts: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    final = 0
    while time.monotonic() < deadline:
        final = await conn.fetchval("SELECT count(*) FROM events WHERE status IN ('processed', 'failed')")
        if final >= events and await conn.fetchval(f"SELECT {FACT_COUNT}") >= facts:
            return time.time()
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the projection wrote {final} of {events} final events in {timeout:.0f}s")


async def faust_bare_run(source: Settings, count: int, logs: Path, timeout: float) -> float:
    """The bare Faust agent (``bench.faust_bare``) on the same records, a fresh group: events/s."""
    tag = uuid.uuid4().hex[:6]
    settings = source.model_copy(
        update={"processor_group": f"bare-{tag}", "worker_data_dir": f"{source.worker_data_dir}-bare-{tag}"}
    )
    out = logs / f"faust-bare-{tag}.log"
    process = await asyncio.to_thread(_spawn_bare, count, settings, out)
    try:
        await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
    except TimeoutError:
        process.kill()
        raise
    found = re.search(r"events_per_s=(\d+)", await asyncio.to_thread(out.read_text, errors="replace"))
    if not found:
        raise RuntimeError(f"the bare Faust agent gave no figure; see {out}")
    return float(found.group(1))


def _spawn_bare(count: int, settings: Settings, out: Path) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "bench.faust_bare", str(count)], env=settings_env(settings), stdout=log, stderr=log
        )
