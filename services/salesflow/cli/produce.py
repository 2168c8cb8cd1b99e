"""``salesflow produce``: the demo and load generator, and producing from a JSON Lines file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from salesflow.cli.common import console, err_console, run, settings

if TYPE_CHECKING:
    from salesflow.producer.client import SendReport

produce_app = typer.Typer(help="Produce events onto the source topics.", no_args_is_help=True)


@produce_app.command("demo")
def produce_demo(
    count: int = typer.Option(1000, min=1, help="How many valid events."),
    rate: float = typer.Option(0, min=0, help="Events per second (0: as fast as the broker takes them)."),
    invalid: int = typer.Option(0, min=0, help="Also send this many invalid records (for the dead-letter path)."),
    seed: int = typer.Option(7, help="Seed of the generator: the same seed gives the same leads."),
) -> None:
    """Realistic leads across several tenants: created -> messages -> sequence steps, autopilot actions."""
    report = run(_produce_demo(count, rate, invalid, seed))
    _finish(report)


@produce_app.command("file")
def produce_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines, one CloudEvent a line."),
) -> None:
    """Produce the CloudEvents of a JSON Lines file, each to its type's topic."""
    events = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    report = run(_send_with_progress(events, rate=0))
    _finish(report)


async def _produce_demo(count: int, rate: float, invalid: int, seed: int) -> SendReport:
    from salesflow.domain.events import EventType
    from salesflow.producer.demo import DemoGenerator

    report = await _send_with_progress(DemoGenerator(seed=seed).events(count), rate=rate, total=count)
    if invalid:
        await _send_invalid(invalid)
        console.print(f"sent {invalid} invalid records to {settings().topics.source(EventType.LEAD_CREATED)}")
    return report


async def _send_with_progress(events: Iterable[dict[str, Any]], *, rate: float, total: int | None = None) -> SendReport:
    from salesflow import bootstrap
    from salesflow.producer.client import collect

    config = settings()
    pending: list[tuple[str, asyncio.Future[Any]]] = []
    started = time.monotonic()
    async with bootstrap.event_producer(config) as producer:
        with _progress() as progress:
            task = progress.add_task("producing", total=total)
            for sent, event in enumerate(events, start=1):
                pending.append((event["id"], await producer.send_event(event)))
                progress.advance(task)
                if rate:
                    # Pace against the start time, so the average rate holds even when a send is slow.
                    await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
        report = await collect(pending)
    elapsed = time.monotonic() - started
    console.print(
        f"acknowledged {len(report.acknowledged)} events in {elapsed:.1f}s "
        f"({len(report.acknowledged) / max(elapsed, 1e-9):,.0f}/s)"
    )
    return report


async def _send_invalid(count: int) -> None:
    from salesflow import bootstrap
    from salesflow.domain.events import EventType
    from salesflow.producer.demo import invalid_records

    config = settings()
    bad = invalid_records(count)
    async with bootstrap.event_producer(config) as producer:
        futures = [
            await producer.send_raw(config.topics.source(EventType.LEAD_CREATED), value, key=b"acme:lead-bad")
            for value, _ in bad
        ]
        await asyncio.gather(*futures)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _finish(report: SendReport) -> None:
    for event_id, error in report.failed[:10]:
        err_console.print(f"[red]not acknowledged[/red] {event_id}: {error}")
    if report.failed:
        raise typer.Exit(1)
