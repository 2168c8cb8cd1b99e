"""The nemesis's timeline (each fault, its stall and worst freshness, from tests/faults/freshness.py)
and its chart: freshness over time with the faults marked, as a PNG beside the verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.freshness import delays
from tests.faults.nemesis.faults import Landed

AFTER_S = 10.0  # how long after a fault is healed its effects are still counted as its own

COLOURS = {
    "sigkill": "tab:red",
    "sigterm": "tab:orange",
    "sigstop": "tab:purple",
    "broker-restart": "tab:brown",
    "postgres-restart": "tab:blue",
    "net-latency": "tab:olive",
    "net-cut": "black",
    "net-slow": "tab:cyan",
}


def _utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


async def timeline(engine: AsyncEngine, landed: list[Landed], started: float) -> list[str]:
    """One line per fault: when (s from the start), what, how long it held, stall and worst freshness."""
    lines = []
    for fault in sorted(landed, key=lambda f: f.started):
        since, until = _utc(fault.started), _utc(fault.healed + AFTER_S)
        window = await delays(engine, since, until)
        visible = await delays(engine, since, until, stamp="updated_at")  # as the projection made it visible
        lines.append(
            f"  t={fault.started - started:6.1f}s  {fault.fault.label():28s} held={fault.healed - fault.started:5.1f}s"
            f"  stall_s={window.stall_s:5.1f} ({window.stalled_partition:13s})"
            f"  worst_freshness_s={window.worst_freshness_s:5.1f}  worst_visible_s={visible.worst_freshness_s:5.1f}"
        )
    return lines


Series = list[tuple[float, float, float]]


async def freshness_series(engine: AsyncEngine, started: float) -> Series:
    """(seconds from the start, worst freshness and worst time to visible of the events that occurred
    in that second)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT extract(epoch FROM date_trunc('second', created_at)) AS at,"
                " max(extract(epoch FROM processed_at - created_at)) AS worst,"
                " max(extract(epoch FROM updated_at - created_at)) AS visible"
                " FROM events WHERE status = 'processed' AND created_at >= :since GROUP BY 1 ORDER BY 1"
            ),
            {"since": _utc(started) - timedelta(seconds=5)},
        )
        return [(float(r.at) - started, float(r.worst), float(r.visible)) for r in rows]


def chart(series: Series, landed: list[Landed], started: float, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 5))
    at = [s for s, _, _ in series]
    axes.plot(at, [w for _, w, _ in series], lw=0.8, color="tab:green", label="worst freshness (processed)")
    axes.plot(at, [v for _, _, v in series], lw=0.6, color="tab:gray", label="worst time to visible (projected)")
    shown: set[str] = set()
    for fault in landed:
        kind = fault.fault.kind
        axes.axvspan(
            fault.started - started,
            max(fault.healed - started, fault.started - started + 0.5),
            color=COLOURS.get(kind, "grey"),
            alpha=0.25,
            label=None if kind in shown else kind,
        )
        shown.add(kind)
    axes.axhline(5.0, color="grey", ls="--", lw=0.8, label="SLO 5 s")
    axes.set_yscale("symlog", linthresh=1.0)  # seconds-long stalls and 50 ms steady state on one chart
    axes.set_ylim(bottom=0)
    axes.set_xlabel("seconds since the load started")
    axes.set_ylabel("processed - occurred (s)")
    axes.set_title(title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=7, ncol=6, frameon=False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
