"""The outbox relay's figures: throughput (committed rows to broker acks) and commit-to-Kafka latency.

``python -m bench.outbox`` runs against the local stack (as ``python -m bench`` does), in a database
and topics of its own, with ``salesflow outbox relay`` as a separate process, started afresh for
each measure:

1. **relay throughput**, events/s: ``--events`` rows (the demo generator's mix, as typed events)
   committed in one transaction while the relay stands idle as leader; from that commit to the
   moment the outbox is empty (every row deleted, which the relay does only after the broker's ack).
   Beside it, in the same round, the raw limit: the same records produced by a bare librdkafka
   producer with the relay's options, from memory, no database.
2. **commit-to-Kafka latency**, ms: ``--writers`` connections (in two processes) commit one event
   per transaction with ``OutboxEventBus``'s statement (its per-key lock, then the insert; on plain
   asyncpg, as SQLAlchemy sessions alone took more CPU than a 2-core machine has to spare at 1,000/s),
   together at ``--rate`` events/s for ``--duration`` s, each on a fixed schedule (rows built before
   the clock starts, so a writer's own CPU does not pace it). The
   source topics keep the broker's append time (``message.timestamp.type=LogAppendTime``), so
   latency is that timestamp minus the moment the writer's commit returned; one host, one clock,
   millisecond resolution.

``--ab DIR`` measures a second relay beside this one, taking turns within each round on the same
records: the relay of the code in ``DIR`` (``git archive <commit> services | tar -x -C DIR``, put
first on its ``PYTHONPATH``) and the working tree's. ``--py-spy FILE`` records the working tree's
relay while it drains its first backlog (raw py-spy output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from sqlalchemy.engine import make_url

from bench.stack import BenchStack, admin_sql, connect
from salesflow.outbox import outbox_row
from salesflow.outbox.bus import CONTENT_TYPE, KEY_LOCK_NAMESPACE
from salesflow.outbox.migrate import upgrade as migrate_outbox
from salesflow.outbox.publisher import relay_producer_options
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.typed_events import TYPED_EVENTS, ProducerEvent
from salesflow.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PY_SPY = Path(sys.executable).parent / "py-spy"
AFTER = "after"  # the working tree's relay; "before" is the --ab code's
# OutboxEventBus's statement (bus._INSERT) for asyncpg: the key's transaction lock, then the insert.
INSERT = (
    "INSERT INTO salesflow_outbox (topic, key, value, headers) SELECT $1, $2, $3, CAST($4 AS jsonb) "
    "FROM (SELECT pg_advisory_xact_lock($5, hashtext($6))) AS serialised"
)
HEADERS = json.dumps([CONTENT_TYPE])


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


class RelayProcess:
    """``salesflow outbox relay`` as a child process: the working tree's, or the code in ``code``."""

    def __init__(self, settings: Settings, url: str, log: Path, code: Path | None) -> None:
        env = {
            **os.environ,
            "SALESFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "SALESFLOW_TOPIC_PREFIX": settings.topic_prefix,
            "SALESFLOW_OUTBOX_DATABASE_URL": url,
            "SALESFLOW_OUTBOX_METRICS_PORT": "0",
            "SALESFLOW_LOG_FORMAT": "text",
        }
        if code is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(code / "services"), env.get("PYTHONPATH", "")])
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "salesflow.cli.main", "outbox", "relay"],
                env=env,
                stdout=out,
                stderr=out,
                cwd=code or ROOT,
            )

    async def leading(self) -> None:
        def logged() -> bool:
            return self.log.exists() and "outbox relay: leader" in self.log.read_text(errors="replace")

        await wait_for(lambda: asyncio.to_thread(logged), timeout=60, every=0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.01) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return time.monotonic()
        await asyncio.sleep(every)
    raise TimeoutError("gave up waiting")


async def relay_throughput(
    url: str, settings: Settings, events: list[ProducerEvent], relay: RelayProcess, py_spy: Path | None = None
) -> float:
    """Commit ``events`` in one transaction; events/s until the relay has deleted the last row."""
    rows = [outbox_row(e, settings.topics) for e in events]
    records = [(r.topic, r.key, r.value, json.dumps(r.headers)) for r in rows]
    conn = await connect(make_url(url))
    spy = start_py_spy(relay, py_spy) if py_spy is not None else None
    if spy is not None:
        await asyncio.sleep(1)  # py-spy attached
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
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        await conn.close()
    return len(events) / (drained - committed)


def start_py_spy(relay: RelayProcess, out: Path) -> subprocess.Popen[bytes]:
    pid = str(relay.process.pid)
    return subprocess.Popen(
        [PY_SPY, "record", "-p", pid, "-r", "200", "-f", "raw", "-o", out, "--nonblocking"], stdout=subprocess.DEVNULL
    )


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


async def main(args: argparse.Namespace) -> dict[str, Any]:
    stack = BenchStack.open()
    name = f"sf_bench_outbox_{stack.run}"
    await admin_sql(stack.admin_url, f'CREATE DATABASE "{name}"')
    url = stack.admin_url.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate_outbox, url)
    settings = Settings(kafka_bootstrap_servers=stack.bootstrap, topic_prefix=f"bench{stack.run}.salesflow.")
    await asyncio.to_thread(create_topics, settings)
    variants: dict[str, Path | None] = {"before": args.ab, AFTER: None} if args.ab else {AFTER: None}
    log = Path(f"/tmp/bench-outbox-relay-{stack.run}.log")
    report: dict[str, Any] = {"events": args.events, "rounds": [], "latency": {}, "relay_log": str(log)}
    print(f"relay log: {log}", file=sys.stderr, flush=True)
    py_spy: Path | None = args.py_spy

    async def started(variant: str) -> RelayProcess:
        relay = RelayProcess(settings, url, log, variants[variant])
        await relay.leading()
        return relay

    try:
        events = [typed(e) for e in DemoGenerator(seed=7).events(args.events)]
        for _ in range(args.rounds):  # the relays and the raw limit take turns: A/B interleaved
            measured: dict[str, int] = {}
            for variant in variants:
                fresh = [e.model_copy(update={"event_id": uuid.uuid4()}) for e in events]
                relay = await started(variant)
                try:
                    rate = await relay_throughput(url, settings, fresh, relay, py_spy if variant == AFTER else None)
                finally:
                    relay.stop()
                py_spy = None if variant == AFTER else py_spy
                measured[f"{variant}_relay_events_per_s"] = round(rate)
            measured["raw_produce_events_per_s"] = round(await asyncio.to_thread(raw_produce, settings, events))
            report["rounds"].append(measured)
            print(measured, file=sys.stderr, flush=True)
        for key in report["rounds"][0] if report["rounds"] else []:
            report[key] = statistics.median(r[key] for r in report["rounds"])
        for _ in range(args.latency_rounds):
            for variant in variants:
                relay = await started(variant)
                try:
                    measured_latency = await commit_latency(url, settings, args.rate, args.duration, args.writers)
                finally:
                    relay.stop()
                report["latency"].setdefault(variant, []).append(measured_latency)
                print(variant, measured_latency, file=sys.stderr, flush=True)
        report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        await admin_sql(stack.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        AdminClient({"bootstrap.servers": stack.bootstrap}).delete_topics(list(settings.topics.sources))
    return report


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="rows per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s for the latency measure")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds at --rate")
    parser.add_argument("--writers", type=int, default=16, help="writer connections for the latency measure")
    parser.add_argument("--latency-rounds", type=int, default=1, help="latency measures per relay")
    parser.add_argument("--ab", type=Path, default=None, help="also measure the relay of the code in DIR")
    parser.add_argument("--py-spy", type=Path, default=None, help="record the relay's first drain to FILE")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse())), indent=2))
