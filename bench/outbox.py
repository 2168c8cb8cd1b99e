"""The outbox relay's figures: throughput (committed rows to broker acks) and commit-to-Kafka latency.

``python -m bench.outbox`` runs against the local stack (as ``python -m bench`` does), in a database
and topics of its own, with ``salesflow outbox relay`` as a separate process:

1. **relay throughput**, events/s: ``--events`` rows (the demo generator's mix, as typed events)
   committed in one transaction while the relay stands idle as leader; from that commit to the
   moment the outbox is empty (every row deleted, which the relay does only after the broker's ack).
   Beside it, the raw limit: the same records produced by a bare librdkafka producer with the relay's
   options, from memory, no database.
2. **commit-to-Kafka latency**, ms: writers commit one event per transaction through
   ``OutboxEventBus`` at ``--rate`` events/s for ``--duration`` s. The source topics keep the
   broker's append time (``message.timestamp.type=LogAppendTime``), so latency is that timestamp minus
   the moment the writer's commit returned; one host, one clock; millisecond resolution.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.stack import BenchStack, admin_sql, connect
from salesflow.db.engine import create_engine
from salesflow.outbox import OutboxEventBus, outbox_row
from salesflow.outbox.migrate import upgrade as migrate_outbox
from salesflow.outbox.publisher import relay_producer_options
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.events import TYPED_EVENTS, ProducerEvent
from salesflow.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def typed(event: dict[str, Any]) -> ProducerEvent:
    data = {k: v for k, v in event["data"].items() if v is not None}
    return TYPED_EVENTS[event["type"]](
        tenant_id=event["tenantid"], occurred_at=event["time"], event_id=event["id"], **data
    )


def create_topics(settings: Settings) -> None:
    """The source topics, keeping the broker's append time as each record's timestamp."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    topics = [
        NewTopic(t, num_partitions=6, replication_factor=1, config={"message.timestamp.type": "LogAppendTime"})
        for t in settings.topics.sources
    ]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)


def start_relay(settings: Settings, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SALESFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SALESFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "SALESFLOW_OUTBOX_DATABASE_URL": url,
        "SALESFLOW_OUTBOX_METRICS_PORT": "0",
        "SALESFLOW_LOG_FORMAT": "text",
    }
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "salesflow.cli.main", "outbox", "relay"], env=env, stdout=out, stderr=out, cwd=ROOT
        )


async def wait_for(check: Any, timeout: float, every: float = 0.01) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return time.monotonic()
        await asyncio.sleep(every)
    raise TimeoutError("gave up waiting")


async def relay_throughput(url: str, settings: Settings, events: list[ProducerEvent]) -> float:
    """Commit ``events`` in one transaction; events/s until the relay has deleted the last row."""
    rows = [outbox_row(e, settings.topics) for e in events]
    records = [(r.topic, r.key, r.value, json.dumps(r.headers)) for r in rows]
    conn = await connect(make_url(url))
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "salesflow_outbox", records=records, columns=["topic", "key", "value", "headers"]
            )
        committed = time.monotonic()  # the relay sees the rows from here (NOTIFY comes with the commit)

        async def empty() -> bool:
            return bool(await conn.fetchval("SELECT NOT EXISTS (SELECT FROM salesflow_outbox)"))

        drained = await wait_for(empty, timeout=600)
    finally:
        await conn.close()
    return len(events) / (drained - committed)


def raw_produce(settings: Settings, events: list[ProducerEvent]) -> float:
    """The same records from memory through a bare producer with the relay's options: events/s to acks."""
    rows = [outbox_row(e, settings.topics) for e in events]
    producer = Producer(relay_producer_options(settings, 30))
    started = time.monotonic()
    for row in rows:
        while True:
            try:
                producer.produce(row.topic, row.value, row.key, headers=[(k, v.encode()) for k, v in row.headers])
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    return len(rows) / (time.monotonic() - started)


async def commit_latency(url: str, settings: Settings, rate: float, duration: float) -> dict[str, float]:
    """Writers commit one event per transaction at ``rate``; commit -> broker append time, in ms."""
    engine = create_engine(url, pool_size=8)
    sessions = async_sessionmaker(engine)
    generator = DemoGenerator(seed=11).events(int(rate * duration) + 1)
    commits: dict[str, float] = {}
    writers = 8
    started = time.monotonic()

    async def writer(n: int) -> None:
        for k in range(int(rate * duration / writers)):
            await asyncio.sleep(max(0.0, started + (k * writers + n) / rate - time.monotonic()))
            event = typed(next(generator))
            async with sessions() as session, session.begin():
                await OutboxEventBus(session, settings.topics).publish(event)
            commits[str(event.event_id)] = time.time()

    await asyncio.gather(*(writer(n) for n in range(writers)))
    achieved = len(commits) / (time.monotonic() - started)
    await engine.dispose()
    appended = await asyncio.to_thread(read_append_times, settings, set(commits))
    latencies = sorted((appended[i] - commits[i]) * 1000 for i in commits)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "rate_achieved": round(achieved),
        "p50_ms": round(quantiles[49], 1),
        "p95_ms": round(quantiles[94], 1),
        "p99_ms": round(quantiles[98], 1),
        "max_ms": round(latencies[-1], 1),
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


async def main(args: argparse.Namespace) -> dict[str, Any]:
    stack = BenchStack.open()
    name = f"sf_bench_outbox_{stack.run}"
    await admin_sql(stack.admin_url, f'CREATE DATABASE "{name}"')
    url = stack.admin_url.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate_outbox, url)
    settings = Settings(kafka_bootstrap_servers=stack.bootstrap, topic_prefix=f"bench{stack.run}.salesflow.")
    await asyncio.to_thread(create_topics, settings)
    log = Path(f"/tmp/bench-outbox-relay-{stack.run}.log")
    relay = start_relay(settings, url, log)
    report: dict[str, Any] = {"events": args.events, "rounds": []}
    try:
        await wait_for(lambda: _logged(log, "outbox relay: leader"), timeout=60, every=0.1)
        events = [typed(e) for e in DemoGenerator(seed=7).events(args.events)]
        for _ in range(args.rounds):  # relay and raw limit take turns: A/B interleaved on a noisy machine
            fresh = [e.model_copy(update={"event_id": uuid.uuid4()}) for e in events]
            relay_rate = await relay_throughput(url, settings, fresh)
            raw_rate = await asyncio.to_thread(raw_produce, settings, events)
            report["rounds"].append(
                {"relay_events_per_s": round(relay_rate), "raw_produce_events_per_s": round(raw_rate)}
            )
            print(report["rounds"][-1], flush=True)
        report["relay_events_per_s"] = statistics.median(r["relay_events_per_s"] for r in report["rounds"])
        report["raw_produce_events_per_s"] = statistics.median(r["raw_produce_events_per_s"] for r in report["rounds"])
        report["latency"] = await commit_latency(url, settings, args.rate, args.duration)
        report["latency"]["rate"] = args.rate
        report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        relay.terminate()
        relay.wait(30)
        await admin_sql(stack.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        AdminClient({"bootstrap.servers": stack.bootstrap}).delete_topics(list(settings.topics.sources))
    return report


async def _logged(log: Path, text: str) -> bool:
    return await asyncio.to_thread(lambda: log.exists() and text in log.read_text(errors="replace"))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="rows per throughput round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s for the latency measure")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds at --rate")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse())), indent=2))
