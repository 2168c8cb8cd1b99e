"""The relay side of ``bench.outbox``: ``salesflow outbox relay`` as a child process, its throughput
over one committed backlog, and the raw limit beside it (a bare librdkafka producer, no database)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from sqlalchemy.engine import make_url

from bench.stack import connect
from salesflow.outbox import outbox_row
from salesflow.outbox.publisher import relay_producer_options
from salesflow.producer.typed_events import TYPED_EVENTS, ProducerEvent
from salesflow.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PY_SPY = Path(sys.executable).parent / "py-spy"


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
