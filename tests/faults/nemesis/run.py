"""One nemesis run: the rig up, the services settled, the load and the faults for ``duration_s``, then
everything healed, quiet awaited, and the verdict, the timeline and the chart."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.db.engine import create_engine
from salesflow.kafka_admin import create_topics
from salesflow.replay.group_lag import group_lag
from salesflow.settings import Settings
from tests.faults.checker import final_ids
from tests.faults.group_watch import GroupWatch
from tests.faults.nemesis import faults, report
from tests.faults.nemesis.load import Load
from tests.faults.nemesis.rig import Rig
from tests.faults.nemesis.schedule import NETWORK_KINDS, Fault, schedule
from tests.faults.nemesis.verdict import NemesisVerdict, judge
from tests.faults.nemesis.watch import StatusWatch

QUIET_TIMEOUT_S = 900.0  # a guard against a hang, not a figure


@dataclass
class Outcome:
    verdict: NemesisVerdict
    line: str
    timeline: list[str]
    chart: Path
    landed: list[faults.Landed] = field(default_factory=list)


def replay_command(duration_s: float, seed: int, kinds: list[str] | None, rate: float) -> str:
    kinds_arg = f" KINDS={','.join(kinds)}" if kinds else ""
    return f"make nemesis DURATION={duration_s:g} SEED={seed} RATE={rate:g}{kinds_arg}"


async def _apply_at(rig: Rig, fault: Fault, t0: float, locks: dict[str, asyncio.Lock]) -> faults.Landed:
    await asyncio.sleep(max(0.0, t0 + fault.at_s - time.time()))
    async with locks.setdefault(fault.target, asyncio.Lock()):  # one fault at a time per target
        print(f"[nemesis] t={time.time() - t0:6.1f}s {fault.label()}", flush=True)
        return await faults.do(rig, fault)


async def _until_quiet(engine: AsyncEngine, settings: Settings, rig: Rig, ids: set[str]) -> float:
    """Wait until every expected event is final and both groups have no lag; returns the seconds."""
    started = time.monotonic()
    wanted = [UUID(i) for i in ids]
    while time.monotonic() - started < QUIET_TIMEOUT_S:
        try:
            final = await final_ids(engine, wanted)
            lags = [
                (await group_lag(settings, g)).total_lag for g in (settings.processor_group, settings.projection_group)
            ]
            if len(final) == len(wanted) and not any(lags):
                return time.monotonic() - started
        except Exception as exc:  # a service or the broker still coming back
            print(f"[nemesis] waiting for quiet: {exc!r}", flush=True)
        await asyncio.sleep(2)
    print(f"[nemesis] no quiet after {QUIET_TIMEOUT_S:.0f}s: judging as it stands", flush=True)
    return time.monotonic() - started


def _new_rig(with_proxy: bool) -> Rig:
    state_dir = Path(tempfile.mkdtemp(prefix="salesflow-nemesis-"))
    state_dir.chmod(0o755)  # Postgres runs as its own OS user
    return Rig.build(state_dir, with_proxy=with_proxy)  # builds Toxiproxy on first use: blocking


async def nemesis(duration_s: float, seed: int, kinds: list[str] | None, rate: float, out_dir: Path) -> Outcome:
    plan = schedule(seed, duration_s, kinds)
    rig = await asyncio.to_thread(_new_rig, any(f.kind in NETWORK_KINDS for f in plan))
    if rig.proxy is None:
        plan = [f for f in plan if f.kind not in NETWORK_KINDS]
        print("[nemesis] no Go to build Toxiproxy with: network faults left out", flush=True)
    clean = False
    try:
        outcome = await _run(rig, plan, duration_s, seed, kinds, rate, out_dir)
        clean = outcome.verdict.clean
        return outcome
    finally:
        await rig.close()
        if clean:
            shutil.rmtree(rig.state_dir, ignore_errors=True)
        else:  # the services' logs (logs/<name>/), the broker's and Postgres's, for the post-mortem
            print(f"[nemesis] state and logs kept in {rig.state_dir}", flush=True)


async def _run(
    rig: Rig, plan: list[Fault], duration_s: float, seed: int, kinds: list[str] | None, rate: float, out_dir: Path
) -> Outcome:
    settings = await rig.start(
        {"topic_prefix": "nemesis.", "topic_partitions": 6, "worker_metrics_port": 0, "projection_metrics_port": 0}
    )
    await create_topics(settings)
    rig.start_services()
    watch = GroupWatch(settings, settings.processor_group).start()
    await watch.until_settled(members=2, timeout=300)
    await watch.stop()
    engine = create_engine(settings.database_url)
    statuses = StatusWatch(settings.database_url).start()
    load = Load(settings, rig.service_url, rate, seed)
    t0 = time.time()
    print(f"[nemesis] seed={seed} duration={duration_s:g}s faults={len(plan)} rate={rate:g}/s", flush=True)
    locks: dict[str, asyncio.Lock] = {}
    landing = [asyncio.create_task(_apply_at(rig, f, t0, locks)) for f in plan]
    await load.run(duration_s)
    landed = list(await asyncio.gather(*landing))
    await faults.heal_all(rig)
    await engine.dispose()  # its pooled connections may predate a Postgres restart
    quiet = await _until_quiet(engine, settings, rig, load.log.expected)
    await statuses.stop()
    down = [name for name, s in rig.services.items() if not s.running]
    verdict = await judge(engine, settings, rig.service_url, load.log, len(statuses.backwards), down)
    lines = await report.timeline(engine, landed, t0)
    series = await report.freshness_series(engine, t0)
    await engine.dispose()
    chart = out_dir / f"nemesis-seed{seed}.png"
    report.chart(series, landed, t0, f"nemesis seed={seed}, {duration_s:g} s, {len(landed)} faults", chart)
    line = verdict.line(
        "nemesis",
        seed=seed,
        duration_s=f"{duration_s:g}",
        faults=len(landed),
        events=len(load.log.events),
        committed=len(load.log.committed),
        rolled_back=len(load.log.rolled_back),
        poison=len(load.log.poison),
        failed_sends=load.log.failed_sends,
        restarts=rig.supervisor.restarts,
        quiet_s=f"{quiet:.0f}",
    )
    return Outcome(verdict, line, lines, chart, landed)
