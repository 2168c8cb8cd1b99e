"""``salesflow demo``: the main job. The local stack, topics, migrations, worker and projection, a demo
load across all four types with a few invalid records, then a summary read back from Postgres."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import typer
from rich.table import Table

from salesflow.cli import demo_tracing
from salesflow.cli.common import console, run, settings
from salesflow.cli.produce import _produce_demo

if TYPE_CHECKING:  # the clients' libraries load when the command runs, not for `salesflow --help`
    from sqlalchemy.ext.asyncio import AsyncConnection

    from salesflow.settings import Settings

Position = tuple[str, int, int]  # topic, partition, offset


def demo(
    count: int = typer.Option(2000, min=1, help="Valid events to produce."),
    invalid: int = typer.Option(5, min=0, help="Invalid records to produce (they end in dead_letters)."),
    rate: float = typer.Option(500, min=0, help="Events per second (0: as fast as possible)."),
    keep_running: bool = typer.Option(False, help="Leave the worker and projection running after the summary."),
    timeout: float = typer.Option(180, help="Seconds to wait for every event to reach a final status."),
    tracing: bool = typer.Option(False, "--tracing", help="Traces to a local Jaeger; a CRM request via the outbox."),
) -> None:
    """Run the whole pipeline on a demo load and print what landed in Postgres."""
    config = _prepare()
    logs = Path(os.environ.get("SALESFLOW_STACK_DIR", ".stack")) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    traced = demo_tracing.start(config, logs) if tracing else None  # before the spawns: OTEL_* env
    services = [_spawn("worker", logs), _spawn("projection", logs)]
    try:
        console.rule(f"producing {count} events and {invalid} invalid records")
        report = run(_produce_demo(count, rate, 0, seed=int(time.time())))
        positions = run(_send_invalid(config, invalid))
        ids = [UUID(i) for i in report.acknowledged]
        if traced:
            ids += run(demo_tracing.publish_requests(traced, config))
        run(_wait_until_final(config, ids, positions, timeout))
        run(_print_summary(config))
        run(_print_dead_letters_of_this_run(config, positions))
        if traced:
            run(demo_tracing.show(traced))
        console.print(
            f"\nmetrics, served while the worker and projection run: "
            f"worker http://127.0.0.1:{config.worker_metrics_port}/metrics, "
            f"projection http://127.0.0.1:{config.projection_metrics_port}/metrics; logs in {logs}"
        )
    finally:
        if traced:
            demo_tracing.stop(traced)
        _leave(services, keep_running)


def _prepare() -> Settings:
    """The local stack (unless endpoints are given), the topics, the migrations, and a leader for
    every partition (producing before that only earns retries and warnings); the settings."""
    if not os.environ.get("SALESFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        from salesflow.devstack import env_exports, up

        console.rule("local stack")
        up(echo=lambda m: console.print(m))
        os.environ.update(env_exports())
    from salesflow.db import migrate
    from salesflow.kafka_admin import create_topics, wait_for_leaders

    config = settings()
    console.rule("topics and migrations")
    plan = run(create_topics(config))
    console.print(f"topics: {len(plan.created)} created, {len(plan.existing)} already there")
    migrate.upgrade(config.database_url)
    console.print("database migrated to head")
    leaderless = run(wait_for_leaders(config, timeout=60))
    if leaderless:
        console.print(f"[red]no leader after 60s for: {', '.join(leaderless)}[/red]")
        raise typer.Exit(1)
    console.print("every partition has a leader")
    return config


def _leave(services: list[subprocess.Popen[bytes]], keep_running: bool) -> None:
    if keep_running:
        console.print(f"worker and projection keep running (pids {[p.pid for p in services]})")
        return
    for process in services:
        _stop(process)
    console.print(
        "worker and projection stopped, and their metrics with them (`salesflow demo --keep-running` leaves them up)"
    )


def summary() -> None:
    """Print events per type and status, funnel and AI ROI per tenant, and dead letters by reason."""
    run(_print_summary(settings()))


def _spawn(command: str, logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"{command}.log", "ab")  # noqa: SIM115 - lives as long as the child process
    return subprocess.Popen([sys.executable, "-m", "salesflow.cli.main", command], stdout=log, stderr=log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def _send_invalid(config: Settings, count: int) -> list[Position]:
    """The demo's invalid records, each with its own event id where it has one; where each landed."""
    from salesflow import bootstrap
    from salesflow.domain.events import EventType
    from salesflow.producer.demo import invalid_records

    topic = config.topics.source(EventType.LEAD_CREATED)
    async with bootstrap.event_producer(config) as producer:
        sent = [
            await (await producer.send_raw(topic, value, key=b"acme:lead-bad")) for value, _ in invalid_records(count)
        ]
    if sent:
        console.print(f"sent {len(sent)} invalid records to {topic}")
    return [(m.topic, m.partition, m.offset) for m in sent]


async def _wait_until_final(config: Settings, ids: list[UUID], invalid: list[Position], timeout: float) -> None:
    """Every valid event has a final status, and every invalid record is in ``dead_letters``."""
    from sqlalchemy import text

    from salesflow import bootstrap

    final = text("SELECT count(*) FROM events WHERE id = ANY(:ids) AND status <> 'pending'")
    deadline = time.monotonic() + timeout
    async with bootstrap.database(config) as engine:
        with console.status("waiting for every event to reach a final status") as status:
            while True:
                async with engine.connect() as conn:
                    done = (await conn.execute(final, {"ids": ids})).scalar_one()
                    dead = len(await _dead_letters_at(conn, invalid))
                status.update(f"{done}/{len(ids)} events final, {dead}/{len(invalid)} invalid records dead-lettered")
                if done >= len(ids) and dead >= len(invalid):
                    console.print(f"all {len(ids)} events reached a final status")
                    return
                if time.monotonic() > deadline:
                    console.print(
                        f"[red]after {timeout:.0f}s only {done}/{len(ids)} events final and "
                        f"{dead}/{len(invalid)} invalid records dead-lettered[/red]"
                    )
                    raise typer.Exit(1)
                await asyncio.sleep(0.5)


async def _dead_letters_at(conn: AsyncConnection, positions: list[Position]) -> list[Any]:
    from sqlalchemy import text

    if not positions:
        return []
    query = text(
        'SELECT reason, event_id FROM dead_letters WHERE (topic, partition, "offset") IN '
        "(SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]), CAST(:offsets AS bigint[])))"
    )
    topics, partitions, offsets = (list(column) for column in zip(*positions, strict=True))
    return list(await conn.execute(query, {"topics": topics, "partitions": partitions, "offsets": offsets}))


async def _print_dead_letters_of_this_run(config: Settings, positions: list[Position]) -> None:
    """This run's invalid records in words: each is one dead letter; those that named an event id are
    also that event's row in ``events`` (status ``dead_lettered``), the others have no id to key one."""
    from salesflow import bootstrap

    if not positions:
        return
    async with bootstrap.database(config) as engine, engine.connect() as conn:
        found = await _dead_letters_at(conn, positions)
    with_id = sum(r.event_id is not None for r in found)
    console.print(
        f"this run: {len(positions)} invalid records sent, {len(found)} in dead_letters; {with_id} of them "
        f"named an event id, so `events` shows {with_id} as dead_lettered; the other {len(found) - with_id} "
        "(not JSON, or not an object) have no id to show there. The tables above count the whole database."
    )


async def _print_summary(config: Settings) -> None:
    from salesflow import bootstrap, reports

    async with bootstrap.database(config) as engine:
        result = await reports.summary(engine)
    console.print(_table("Events by type and status", result.status_counts))
    console.print(_table("Funnel per tenant (leads per stage)", result.funnel))
    console.print(_table("AI ROI per tenant", result.ai_roi))
    console.print(_table("Dead letters by reason", result.dead_letters))


def _table(title: str, rows: list[dict[str, object]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in rows[0].keys() if rows else ["(none)"]:
        table.add_column(
            column, justify="right" if column not in ("type", "status", "tenant_id", "stage", "reason") else "left"
        )
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    return table


def _fmt(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)
