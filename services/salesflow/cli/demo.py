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
from typing import TYPE_CHECKING
from uuid import UUID

import typer
from rich.table import Table

from salesflow.cli.common import console, run, settings
from salesflow.cli.produce import _produce_demo

if TYPE_CHECKING:
    from salesflow.settings import Settings


def demo(
    count: int = typer.Option(2000, min=1, help="Valid events to produce."),
    invalid: int = typer.Option(5, min=0, help="Invalid records to produce (they end in dead_letters)."),
    rate: float = typer.Option(500, min=0, help="Events per second (0: as fast as possible)."),
    keep_running: bool = typer.Option(False, help="Leave the worker and projection running after the summary."),
    timeout: float = typer.Option(180, help="Seconds to wait for every event to reach a final status."),
) -> None:
    """Run the whole pipeline on a demo load and print what landed in Postgres."""
    from salesflow.db import migrate
    from salesflow.kafka_admin import create_topics

    if not os.environ.get("SALESFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        from salesflow.devstack import env_exports, up

        console.rule("local stack")
        up(echo=lambda m: console.print(m))
        os.environ.update(env_exports())
    config = settings()
    console.rule("topics and migrations")
    plan = run(create_topics(config))
    console.print(f"topics: {len(plan.created)} created, {len(plan.existing)} already there")
    migrate.upgrade(config.database_url)
    console.print("database migrated to head")

    logs = Path(os.environ.get("SALESFLOW_STACK_DIR", ".stack")) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    services = [_spawn("worker", logs), _spawn("projection", logs)]
    try:
        console.rule(f"producing {count} events and {invalid} invalid records")
        report = run(_produce_demo(count, rate, invalid, seed=int(time.time())))
        ids = [UUID(i) for i in report.acknowledged]
        run(_wait_until_final(config, ids, timeout))
        run(_print_summary(config))
        console.print(
            f"\nmetrics: worker http://127.0.0.1:{config.worker_metrics_port}/metrics, "
            f"projection http://127.0.0.1:{config.projection_metrics_port}/metrics; logs in {logs}"
        )
    finally:
        if keep_running:
            console.print(f"worker and projection keep running (pids {[p.pid for p in services]})")
        else:
            for process in services:
                _stop(process)


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


async def _wait_until_final(config: Settings, ids: list[UUID], timeout: float) -> None:
    from sqlalchemy import text

    from salesflow import bootstrap

    query = text("SELECT count(*) FROM events WHERE id = ANY(:ids) AND status <> 'pending'")
    deadline = time.monotonic() + timeout
    async with bootstrap.database(config) as engine:
        with console.status("waiting for every event to reach a final status") as status:
            while True:
                async with engine.connect() as conn:
                    done = (await conn.execute(query, {"ids": ids})).scalar_one()
                status.update(f"{done}/{len(ids)} events final")
                if done >= len(ids):
                    console.print(f"all {len(ids)} events reached a final status")
                    return
                if time.monotonic() > deadline:
                    console.print(f"[red]only {done}/{len(ids)} events final after {timeout:.0f}s[/red]")
                    raise typer.Exit(1)
                await asyncio.sleep(0.5)


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
