"""``salesflow dlq``: list and inspect dead letters, and redrive chosen ones to their original topic."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from salesflow.cli.common import console, err_console, run, settings
from salesflow.cli.replay import plain_table, print_json
from salesflow.errors import ReplayError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from salesflow.replay.deadletters import DeadLetterId
    from salesflow.settings import Settings

T = TypeVar("T")

dlq_app = typer.Typer(help="Dead letters: list, show, and redrive them after a fix.", no_args_is_help=True)

PREVIEW_BYTES = 2000


@dlq_app.command("list")
def list_(
    reason: str | None = typer.Option(None, help="Only this reason (e.g. not_json, missing_field)."),
    topic: str | None = typer.Option(None, help="Only records first read from this topic."),
    include_redriven: bool = typer.Option(False, "--all", help="Include dead letters already redriven."),
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, newest first."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List dead letters, newest first (those already redriven only with --all)."""
    from salesflow.replay import deadletters as dl

    rows = run(
        _with_engine(
            settings(),
            lambda e: dl.list_dead_letters(
                e, reason=reason, topic=topic, include_redriven=include_redriven, limit=limit
            ),
        )
    )
    if json_output:
        print_json([_summary(r) for r in rows])
        return
    table = [
        (
            dl.row_id(r),
            r["reason"],
            _short(r["detail"], 60),
            r["event_id"],
            _when(r["dead_lettered_at"]),
            _when(r["redriven_at"]),
        )
        for r in rows
    ]
    console.out(
        plain_table(("ID", "REASON", "DETAIL", "EVENT-ID", "DEAD-LETTERED-AT", "REDRIVEN-AT"), table), highlight=False
    )
    console.out(f"\n{len(rows)} dead letter(s); show one with `salesflow dlq show ID`", highlight=False)


@dlq_app.command("show")
def show(
    dead_letter_id: str = typer.Argument(..., metavar="ID", help="topic:partition:offset, as `dlq list` prints it."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one dead letter: why, where from, its headers and (a preview of) its bytes."""
    from salesflow.replay import deadletters as dl

    ident = _parse(dead_letter_id)
    rows = run(_with_engine(settings(), lambda e: dl.get_dead_letters(e, [ident])))
    if not rows:
        err_console.print(f"[red]not found:[/red] dead letter {ident}")
        raise typer.Exit(1)
    row = rows[0]
    detail = {
        **_summary(row),
        "headers": row["headers"],
        "key": _text(row["record_key"]),
        "value": _text(row["raw"]),
        "value_bytes": len(row["raw"] or b""),
    }
    if json_output:
        print_json(detail)
        return
    for name, value in detail.items():
        if name != "headers":
            console.out(f"{name + ':':<20}{'-' if value is None else value}", highlight=False)
    console.out("headers:", highlight=False)
    for key, value in (row["headers"] or {}).items():
        console.out(f"  {key} = {value}", highlight=False)


@dlq_app.command("redrive")
def redrive(
    ids: list[str] | None = typer.Argument(
        None, metavar="[ID]...", help="Dead letters to redrive (topic:partition:offset)."
    ),
    reason: str | None = typer.Option(None, help="Redrive every dead letter with this reason."),
    topic: str | None = typer.Option(None, help="Redrive every dead letter first read from this topic."),
    again: bool = typer.Option(False, "--again", help="Also those already redriven."),
    limit: int = typer.Option(1000, min=1, max=100_000, help="At most this many (with --reason/--topic)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be redriven."),
) -> None:
    """Send dead letters back to their original topic and partition (after a fix), and mark them redriven."""
    if not ids and reason is None and topic is None:
        raise typer.BadParameter("name the dead letters: IDs, or --reason / --topic")
    chosen = [_parse(i) for i in ids or []]
    try:
        sent = run(_redrive(settings(), chosen, reason, topic, again, limit, dry_run))
    except ReplayError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    verb = "would redrive" if dry_run else "redrove"
    for ident, new in sent:
        console.out(f"{verb} {ident}" + ("" if new is None else f" -> {new[0]}[{new[1]}]@{new[2]}"), highlight=False)
    console.out(f"{len(sent)} dead letter(s) {'to redrive' if dry_run else 'redriven'}", highlight=False)


async def _redrive(
    config: Settings,
    ids: list[DeadLetterId],
    reason: str | None,
    topic: str | None,
    again: bool,
    limit: int,
    dry_run: bool,
) -> list[tuple[DeadLetterId, Any]]:
    from salesflow import bootstrap
    from salesflow.replay import deadletters as dl

    async with bootstrap.database(config) as engine:
        rows = await dl.get_dead_letters(engine, ids) if ids else []
        if reason is not None or topic is not None:
            rows += await dl.list_dead_letters(engine, reason=reason, topic=topic, include_redriven=again, limit=limit)
        missing = set(ids) - {dl.row_id(r) for r in rows}
        if missing:
            raise ReplayError(f"no such dead letter: {', '.join(map(str, sorted(missing)))}")
        rows = [r for r in {dl.row_id(r): r for r in rows}.values() if again or r["redriven_at"] is None]
        if dry_run:
            return [(dl.row_id(r), None) for r in rows]
        async with bootstrap.kafka_producer(config) as producer:
            return await dl.redrive(engine, producer, rows)


async def _with_engine(config: Settings, query: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    from salesflow import bootstrap

    async with bootstrap.database(config) as engine:
        return await query(engine)


def _parse(text: str) -> DeadLetterId:
    from salesflow.replay.deadletters import DeadLetterId

    try:
        return DeadLetterId.parse(text)
    except ReplayError as exc:
        raise typer.BadParameter(str(exc)) from None


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    from salesflow.replay import deadletters as dl

    return {
        "id": str(dl.row_id(row)),
        "topic": row["topic"],
        "partition": row["partition"],
        "offset": row["offset"],
        "reason": row["reason"],
        "detail": row["detail"],
        "event_id": row["event_id"] and str(row["event_id"]),
        "original_timestamp": _when(row["original_timestamp"]),
        "dead_lettered_at": _when(row["dead_lettered_at"]),
        "redriven_at": _when(row["redriven_at"]),
    }


def _when(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _short(text: str | None, width: int) -> str | None:
    return text if text is None or len(text) <= width else text[: width - 1] + "…"


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    shown = raw[:PREVIEW_BYTES].decode("utf-8", "replace")
    return shown + (f"… ({len(raw) - PREVIEW_BYTES} more bytes)" if len(raw) > PREVIEW_BYTES else "")
