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
import os
import statistics
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from bench.outbox_latency import commit_latency
from bench.outbox_relay import RelayProcess, create_topics, raw_produce, relay_throughput, typed
from bench.stack import BenchStack, admin_sql
from salesflow.outbox.migrate import upgrade as migrate_outbox
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.typed_events import ProducerEvent
from salesflow.settings import Settings

AFTER = "after"  # the working tree's relay; "before" is the --ab code's


@dataclass(frozen=True)
class Relays:
    """Where the measured relays run: their database, topics and log, and the code of each variant."""

    settings: Settings
    url: str
    log: Path
    variants: dict[str, Path | None]  # variant -> the code it runs (None: the working tree)

    async def started(self, variant: str) -> RelayProcess:
        relay = RelayProcess(self.settings, self.url, self.log, self.variants[variant])
        await relay.leading()
        return relay


async def main(args: argparse.Namespace) -> dict[str, Any]:
    stack = BenchStack.open()
    name = f"sf_bench_outbox_{stack.run}"
    await admin_sql(stack.admin_url, f'CREATE DATABASE "{name}"')
    url = stack.admin_url.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate_outbox, url)
    settings = Settings(kafka_bootstrap_servers=stack.bootstrap, topic_prefix=f"bench{stack.run}.salesflow.")
    await asyncio.to_thread(create_topics, settings)
    variants: dict[str, Path | None] = {"before": args.ab, AFTER: None} if args.ab else {AFTER: None}
    relays = Relays(settings, url, Path(f"/tmp/bench-outbox-relay-{stack.run}.log"), variants)
    report: dict[str, Any] = {"events": args.events, "rounds": [], "latency": {}, "relay_log": str(relays.log)}
    print(f"relay log: {relays.log}", file=sys.stderr, flush=True)
    try:
        await throughput_rounds(relays, args, report)
        await latency_rounds(relays, args, report)
        report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        await admin_sql(stack.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        AdminClient({"bootstrap.servers": stack.bootstrap}).delete_topics(list(settings.topics.sources))
    return report


async def throughput_rounds(relays: Relays, args: argparse.Namespace, report: dict[str, Any]) -> None:
    """``--rounds`` rounds in which the relays and the raw limit take turns (A/B interleaved); the
    medians of the rounds go to the top of ``report``."""
    events = [typed(e) for e in DemoGenerator(seed=7).events(args.events)]
    py_spy: Path | None = args.py_spy  # the working tree's first drain only
    for _ in range(args.rounds):
        measured: dict[str, int] = {}
        for variant in relays.variants:
            spy = py_spy if variant == AFTER else None
            rate = await relay_round(relays, variant, events, spy)
            py_spy = None if variant == AFTER else py_spy
            measured[f"{variant}_relay_events_per_s"] = round(rate)
        measured["raw_produce_events_per_s"] = round(await asyncio.to_thread(raw_produce, relays.settings, events))
        report["rounds"].append(measured)
        print(measured, file=sys.stderr, flush=True)
    for key in report["rounds"][0] if report["rounds"] else []:
        report[key] = statistics.median(r[key] for r in report["rounds"])


async def relay_round(relays: Relays, variant: str, events: list[ProducerEvent], py_spy: Path | None) -> float:
    """One relay, started afresh, drains ``events`` (with fresh ids) committed at once: events/s."""
    fresh = [e.model_copy(update={"event_id": uuid.uuid4()}) for e in events]
    relay = await relays.started(variant)
    try:
        return await relay_throughput(relays.url, relays.settings, fresh, relay, py_spy)
    finally:
        relay.stop()


async def latency_rounds(relays: Relays, args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Commit-to-Kafka latency, ``--latency-rounds`` per relay, each relay started afresh."""
    for _ in range(args.latency_rounds):
        for variant in relays.variants:
            relay = await relays.started(variant)
            try:
                measured = await commit_latency(relays.url, relays.settings, args.rate, args.duration, args.writers)
            finally:
                relay.stop()
            report["latency"].setdefault(variant, []).append(measured)
            print(variant, measured, file=sys.stderr, flush=True)


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
