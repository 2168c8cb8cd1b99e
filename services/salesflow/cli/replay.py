"""``salesflow replay``: reset a group's offsets (dry run by default), or re-publish single or failed events."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
import typer

from salesflow.cli.common import console, err_console, run, settings
from salesflow.domain.events import EventType  # the --type choices
from salesflow.errors import GroupHasLiveMembers, ReplayError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from salesflow.replay.plan import ResetPlan
    from salesflow.replay.republish import ReplayResult
    from salesflow.replay.store import EventPosition
    from salesflow.replay.targets import ResetTarget
    from salesflow.settings import Settings

    # Which events to replay: a query of ``events``, run on the engine the replay opens.
    Selection = Callable[[AsyncEngine], Awaitable[list[EventPosition]]]

replay_app = typer.Typer(
    help="Replay events: reset a consumer group's offsets, or re-publish events.", no_args_is_help=True
)

EXIT_REFUSED = 3  # the group has live members


# The columns `kafka-consumer-groups --describe` starts with, in the plans and lag tables alike.
GROUP_PARTITION_COLUMNS = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET")


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned, space-padded columns, as Kafka's tools print them (greppable, never wrapped)."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


@replay_app.command("offsets")
def offsets(
    group: str | None = typer.Option(None, help="Consumer group (default: SALESFLOW_PROCESSOR_GROUP)."),
    topic: list[str] = typer.Option([], help="Scope: a topic, or T:0,1 for some partitions. Repeatable."),
    all_topics: bool = typer.Option(False, "--all-topics", help="Scope: every partition the group has an offset for."),
    to_earliest: bool = typer.Option(False, "--to-earliest", help="Target: the log start."),
    to_latest: bool = typer.Option(False, "--to-latest", help="Target: the log end."),
    to_offset: int | None = typer.Option(None, "--to-offset", help="Target: this offset (clamped to the log)."),
    shift_by: int | None = typer.Option(
        None, "--shift-by", help="Target: the committed offset plus N (N < 0 goes back)."
    ),
    to_datetime: str | None = typer.Option(
        None, "--to-datetime", help="Target: the first record at or after YYYY-MM-DDTHH:mm:SS.sss[Z]."
    ),
    by_duration: str | None = typer.Option(
        None, "--by-duration", help="Target: the first record at or after now minus PnDTnHnMnS."
    ),
    from_file: Path | None = typer.Option(
        None, "--from-file", exists=True, dir_okay=False, help="Target: topic,partition,offset lines."
    ),
    to_current: bool = typer.Option(
        False, "--to-current", help="Target: the committed offset (the log end without one)."
    ),
    execute: bool = typer.Option(False, "--execute", help="Apply the plan. Without it, nothing changes (dry run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the plan (the default)."),
    json_output: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Reset a consumer group's offsets like `kafka-consumer-groups --reset-offsets`: a plan by default."""
    from salesflow.replay.offsets import reset_offsets
    from salesflow.replay.targets import TopicScope

    config = settings()
    group = group or config.processor_group
    if execute and dry_run:
        raise typer.BadParameter("--execute and --dry-run contradict each other")
    try:
        target = _target(
            group, to_earliest, to_latest, to_offset, shift_by, to_datetime, by_duration, from_file, to_current
        )
        scopes = [TopicScope.parse(t) for t in topic]
        plan = run(reset_offsets(config, group, target, topics=scopes, all_topics=all_topics, execute=execute))
    except GroupHasLiveMembers as exc:
        err_console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(EXIT_REFUSED) from None
    except ReplayError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_plan(plan, json_output)


def _target(
    group: str,
    earliest: bool,
    latest: bool,
    offset: int | None,
    shift: int | None,
    when: str | None,
    duration: str | None,
    path: Path | None,
    current: bool,
) -> ResetTarget:
    from salesflow.replay import targets

    chosen = [
        name
        for name, given in (
            ("--to-earliest", earliest),
            ("--to-latest", latest),
            ("--to-offset", offset is not None),
            ("--shift-by", shift is not None),
            ("--to-datetime", when is not None),
            ("--by-duration", duration is not None),
            ("--from-file", path is not None),
            ("--to-current", current),
        )
        if given
    ]
    if len(chosen) != 1:
        raise typer.BadParameter(f"give exactly one target (got {', '.join(chosen) or 'none'})")
    if earliest:
        return targets.to_earliest()
    if latest:
        return targets.to_latest()
    if offset is not None:
        return targets.to_offset(offset)
    if shift is not None:
        return targets.shift_by(shift)
    if when is not None:
        return targets.to_datetime(when)
    if duration is not None:
        return targets.by_duration(duration)
    if path is not None:
        return targets.from_file(str(path), path.read_text(), group)
    return targets.to_current()


def _print_plan(plan: ResetPlan, json_output: bool) -> None:
    if json_output:
        print_json(plan.as_dict())
        return
    for warning in plan.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}")
    rows = [
        (plan.group, r.topic, r.partition, r.current_offset, r.new_offset, r.log_end_offset, r.to_reprocess, r.to_skip)
        for r in plan.rows
    ]
    console.out(
        plain_table(
            (*GROUP_PARTITION_COLUMNS, "NEW-OFFSET", "LOG-END-OFFSET", "TO-REPROCESS", "TO-SKIP"),
            rows,
        ),
        highlight=False,
    )
    if plan.executed:
        console.out(
            f"\napplied {plan.target.describe()} to {len(plan.rows)} partition(s) of group {plan.group}: "
            f"{plan.total_to_reprocess} record(s) to reprocess",
            highlight=False,
        )
    else:
        console.out(
            f"\ndry run of {plan.target.describe()}: nothing changed; add --execute to apply "
            f"({plan.total_to_reprocess} record(s) would be reprocessed)",
            highlight=False,
        )


@replay_app.command("event")
def event(
    event_ids: list[str] = typer.Argument(..., metavar="EVENT_ID...", help="Event ids (UUIDs)."),
    json_output: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Re-publish events' original records (found via their source position) with the replay header."""
    try:
        ids = [UUID(i) for i in event_ids]
    except ValueError:
        raise typer.BadParameter("event ids are UUIDs") from None
    from salesflow.replay.store import positions_by_id

    found, results = run(_replay(settings(), lambda engine: positions_by_id(engine, ids)))
    missing = [str(i) for i in ids if i not in {f.event_id for f in found}]
    _print_results(results, json_output, missing)
    if missing or not all(r.ok for r in results):
        raise typer.Exit(1)


@replay_app.command("failed")
def failed(
    event_type: EventType | None = typer.Option(None, "--type", help="Only events of this type."),
    limit: int = typer.Option(100, min=1, max=10_000, help="At most this many, oldest first."),
    json_output: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Re-publish the original records of failed events (oldest first) with the replay header."""
    from salesflow.replay.store import positions_by_status

    type_name = event_type.value if event_type else None
    _, results = run(_replay(settings(), lambda engine: positions_by_status(engine, event_type=type_name, limit=limit)))
    _print_results(results, json_output, [])
    if not all(r.ok for r in results):
        raise typer.Exit(1)


async def _replay(config: Settings, select: Selection) -> tuple[list[EventPosition], list[ReplayResult]]:
    from salesflow import bootstrap

    async with bootstrap.database(config) as engine:
        found = await select(engine)
    if not found:
        return found, []
    async with bootstrap.replayer(config) as replayer:
        return found, await replayer.replay(found)


def _print_results(results: list[ReplayResult], json_output: bool, missing: list[str]) -> None:
    if json_output:
        print_json({"results": [r.as_dict() for r in results], "not_found": missing})
        return
    for event_id in missing:
        err_console.print(f"[red]not found:[/red] event {event_id}")
    if not results:
        console.out("nothing to replay", highlight=False)
        return

    def pos(p: tuple[str, int, int] | None) -> str | None:
        return None if p is None else f"{p[0]}[{p[1]}]@{p[2]}"

    console.out(
        plain_table(
            ("EVENT-ID", "RESULT", "ORIGINAL", "REPUBLISHED-AS", "DETAIL"),
            [(r.event_id, r.status, pos(r.original), pos(r.republished), r.detail) for r in results],
        ),
        highlight=False,
    )
    console.out(
        f"\n{sum(r.ok for r in results)} of {len(results)} event(s) re-published with the replay header",
        highlight=False,
    )
