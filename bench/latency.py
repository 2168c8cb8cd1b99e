"""End-to-end latency: produce at a fixed rate, and time each event from its send to its final status
row in Postgres, with the worker and the projection running as processes.

Clocks: everything runs on one host, so the producer's clock (the CloudEvent ``time``, stamped as the
event is handed to the Kafka client) and Postgres's ``clock_timestamp()`` are the same clock. A row
trigger, installed in the benchmark's own database only, notes the moment an event's row first turns
``processed`` or ``failed``. That moment is inside the projection's transaction, so the figures leave
out the commit (one batch's write, a few ms), and the trigger itself adds a little work to each write.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from confluent_kafka import KafkaError, Producer

from bench import services
from bench.stack import BenchStack
from salesflow.domain.events import EventType
from salesflow.processor.engines.librdkafka import NO_OFFSET, delivery_problem, is_fatal, producer_config
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.envelope import encode, record_key
from salesflow.settings import Settings

FINAL_SEEN = """
CREATE TABLE IF NOT EXISTS bench_final_seen (id uuid PRIMARY KEY, seen_at timestamptz NOT NULL);
CREATE OR REPLACE FUNCTION bench_note_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IN ('processed', 'failed') THEN
    INSERT INTO bench_final_seen VALUES (NEW.id, clock_timestamp()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bench_note_final ON events;
CREATE TRIGGER bench_note_final AFTER INSERT OR UPDATE OF status ON events
  FOR EACH ROW EXECUTE FUNCTION bench_note_final();
"""
TICK = 0.005


@dataclass
class RateResult:
    rate: int
    achieved_rate: float
    events: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    worker_rss_mb: float
    projection_rss_mb: float


async def produce_at(settings: Settings, rate: int, seconds: float, seed: int) -> tuple[list[str], float]:
    """Send ``rate`` events/s for ``seconds``, each stamped (CloudEvent ``time``) as it is sent.

    Through librdkafka with the worker's producer options (idempotent, ``acks=all``, the same key
    partitioner): aiokafka's producer cost about 29 µs of CPU a record, so one process sharing the
    machine with the pipeline could not offer 10,000 events/s (it reached 4,571). Every record must be
    acknowledged, or the run fails."""
    failures: list[str] = []
    unproven: list[tuple[str, bytes, bytes]] = []  # delivered without an offset: sent again

    def delivered(record: tuple[str, bytes, bytes], error: KafkaError | None, message: Any) -> None:
        problem = delivery_problem(error, message)
        if problem == NO_OFFSET:
            unproven.append(record)
        elif problem is not None:
            failures.append(problem)

    producer = Producer(
        producer_config(settings, lambda error: failures.append(str(error)) if is_fatal(error) else None)
    )

    def send(record: tuple[str, bytes, bytes]) -> None:
        while True:
            try:
                producer.produce(record[0], record[1], key=record[2], on_delivery=partial(delivered, record))
                return
            except BufferError:  # librdkafka's queue is full: serve deliveries, then try again
                producer.poll(0.01)

    ids: list[str] = []
    events = DemoGenerator(seed=seed).events(int(rate * seconds))
    started = time.monotonic()
    for event in events:  # the generator stamps `time` when each event is drawn, just before its send
        send((settings.topics.source(EventType(event["type"])), encode(event), record_key(event)))
        producer.poll(0)
        ids.append(event["id"])
        due = started + len(ids) / rate
        if (ahead := due - time.monotonic()) > TICK:
            await asyncio.sleep(ahead)
    achieved = len(ids) / (time.monotonic() - started)
    left = await asyncio.to_thread(producer.flush, 60.0)
    for _ in range(3):  # as the worker does after its restart: send what is not known to be on the log
        again, unproven[:] = list(unproven), []
        if again:
            print(f"[bench] {len(again)} records delivered without an offset: sent again", file=sys.stderr, flush=True)
        for record in again:
            send(record)
        left += await asyncio.to_thread(producer.flush, 60.0)
    producer.close()  # its threads and connections go now, not whenever the collector runs
    if left or failures or unproven:
        raise RuntimeError(
            f"the load generator lost {left} records unacknowledged, {len(unproven)} without an offset; "
            f"errors: {failures[:3]}"
        )
    return ids, achieved


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


async def e2e_run(stack: BenchStack, rates: list[int], seconds: float, logs: Path) -> list[RateResult]:
    settings = await stack.settings("e2e")
    conn = await stack.connect()
    await conn.execute(FINAL_SEEN)
    worker = services.start("worker", settings, logs / "e2e-worker")
    projection = services.start("projection", settings, logs / "e2e-projection")
    results = []
    try:
        warm, _ = await produce_at(settings, 200, 2.0, seed=1)  # both services up and assigned
        # Strict: every warm-up event final. A 1% tolerance once hid "399 of 400"; its "3 of 400 not
        # final" line was printed the moment 397 were, the other 3 still on their way. Issue 28 found
        # no loss (tests/faults/test_first_sends.py reads back every acknowledged first send).
        await _wait_final(conn, warm, timeout=120)
        for n, rate in enumerate(rates):
            since = time.monotonic() + seconds / 2
            ids, achieved = await produce_at(settings, rate, seconds, seed=100 + n)
            worker_rss, projection_rss = worker.rss.steady_mb(since), projection.rss.steady_mb(since)
            # A backlog drains at the pipeline's own pace: allow for a slow one rather than fail the run.
            await _wait_final(conn, ids, timeout=max(120.0, seconds * 4, len(ids) / 200))
            latencies = await _latencies_ms(conn, ids)
            results.append(
                RateResult(
                    rate=rate,
                    achieved_rate=round(achieved, 1),
                    events=len(latencies),
                    p50_ms=percentile(latencies, 50),
                    p95_ms=percentile(latencies, 95),
                    p99_ms=percentile(latencies, 99),
                    max_ms=max(latencies),
                    worker_rss_mb=worker_rss,
                    projection_rss_mb=projection_rss,
                )
            )
    finally:
        worker.stop()
        projection.stop()
        await conn.execute("DROP TRIGGER IF EXISTS bench_note_final ON events")
        await conn.close()
    return results


async def _wait_final(conn: Any, ids: list[str], timeout: float) -> None:
    wanted = [UUID(i) for i in ids]
    deadline = time.monotonic() + timeout
    final = 0
    while time.monotonic() < deadline:
        final = await conn.fetchval("SELECT count(*) FROM bench_final_seen WHERE id = ANY($1)", wanted)
        if final >= len(ids):
            return
        await asyncio.sleep(0.5)
    # Which ones, so a recurrence can be looked up on the topic (every one of them was acknowledged).
    seen = {r["id"] for r in await conn.fetch("SELECT id FROM bench_final_seen WHERE id = ANY($1)", wanted)}
    missing = [str(i) for i in wanted if i not in seen][:5]
    raise TimeoutError(f"{len(ids) - final} of {len(ids)} events not final after {timeout:.0f}s, e.g. {missing}")


async def _latencies_ms(conn: Any, ids: list[str]) -> list[float]:
    rows = await conn.fetch(
        "SELECT extract(epoch FROM s.seen_at - e.created_at) * 1000 AS ms"
        " FROM bench_final_seen s JOIN events e USING (id) WHERE s.id = ANY($1)",
        [UUID(i) for i in ids],
    )
    return [float(r["ms"]) for r in rows]
