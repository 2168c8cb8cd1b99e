"""``salesflow lag``: consumer lag of a group, like `kafka-consumer-groups --describe`, plus lag in seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from salesflow.cli.common import console, run, settings
from salesflow.cli.replay import GROUP_PARTITION_COLUMNS, plain_table, print_json

if TYPE_CHECKING:
    from salesflow.replay.group_lag import GroupLag


def lag(
    group: str | None = typer.Option(None, help="Consumer group (default: SALESFLOW_PROCESSOR_GROUP)."),
    json_output: bool = typer.Option(False, "--json", help="Print the lag as JSON."),
) -> None:
    """Show a group's lag per partition: offsets, lag in records, the consumer, and lag in seconds."""
    from salesflow.replay.group_lag import group_lag

    config = settings()
    found = run(group_lag(config, group or config.processor_group))
    if json_output:
        print_json(found.as_dict())
        return
    _print(found)


def _print(found: GroupLag) -> None:
    if not found.members:
        console.out(f"Consumer group '{found.group}' has no active members (state {found.state}).\n", highlight=False)
    rows = [
        (
            found.group,
            r.topic,
            r.partition,
            r.current_offset,
            r.log_end_offset,
            r.lag,
            None if r.lag_seconds is None else f"{r.lag_seconds:.1f}",
            r.consumer_id,
            r.host,
            r.client_id,
        )
        for r in found.rows
    ]
    console.out(
        plain_table(
            (*GROUP_PARTITION_COLUMNS, "LOG-END-OFFSET", "LAG", "LAG-SECONDS", "CONSUMER-ID", "HOST", "CLIENT-ID"),
            rows,
        ),
        highlight=False,
    )
    oldest = found.max_lag_seconds
    console.out(
        f"\ntotal lag {found.total_lag} record(s); oldest unprocessed record "
        f"{'-' if oldest is None else f'{oldest:.1f}s'} old",
        highlight=False,
    )
