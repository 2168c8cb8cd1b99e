"""The worker dies (SIGKILL), is stopped (SIGTERM), or shares its partitions with another that dies:
no acknowledged event is lost and no effect is applied twice."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.settings import Settings
from tests.faults.checker import Verdict, check, final_ids
from tests.faults.conftest import Supervisor
from tests.faults.workload import Workload
from tests.harness import wait_for

pytestmark = pytest.mark.faults

EVENTS = 20_000
RATE = 2_000.0


async def settle(engine: AsyncEngine, workload: Workload, timeout: float = 240) -> float:
    """Wait until every acknowledged event is final; returns how long that took."""
    await workload.done.wait()
    started = time.monotonic()
    ids = [UUID(i) for i in workload.acknowledged]

    async def all_final() -> bool:
        return len(await final_ids(engine, ids)) == len(ids)

    await wait_for(all_final, timeout=timeout, every=1.0, what="every acknowledged event to be final")
    return time.monotonic() - started


def assert_clean(verdict: Verdict) -> None:
    assert verdict.acknowledged > 0
    assert (verdict.lost, verdict.duplicates, verdict.missing_facts, verdict.wrong_status) == (0, 0, 0, 0)
    assert verdict.cost_recorded == pytest.approx(verdict.cost_expected, abs=1e-3)


@dataclass
class LoadedRun:
    """A fresh pipeline's settings and database, with a workload being produced in the background."""

    settings: Settings
    engine: AsyncEngine
    workload: Workload
    producing: asyncio.Task[None]

    async def finish(self) -> tuple[Verdict, float]:
        """Wait for the workload and for every acknowledged event to be final; the verdict and the
        seconds that took after the last send."""
        await self.producing
        recovery = await settle(self.engine, self.workload)
        return await check(self.engine, self.workload.events, self.workload.acknowledged), recovery


async def under_load(
    fault_settings: Callable[..., Any],
    fault_engine_for: Callable[[Settings], AsyncEngine],
    count: int,
    rate: float = RATE,
) -> LoadedRun:
    settings = await fault_settings()
    workload = Workload(settings, count=count, rate=rate)
    return LoadedRun(settings, fault_engine_for(settings), workload, asyncio.create_task(workload.run()))


async def test_worker_killed_with_sigkill_three_times(
    fault_settings: Callable[..., Any], fault_engine_for: Callable[[Settings], AsyncEngine], supervisor: Supervisor
) -> None:
    run = await under_load(fault_settings, fault_engine_for, EVENTS)
    worker = supervisor.start("worker", run.settings)
    supervisor.start("projection", run.settings)
    kills = 0
    for _ in range(3):
        await asyncio.sleep(random.uniform(2.0, 3.5))
        worker.kill()  # the supervisor starts it again, as a process manager would
        kills += 1
    verdict, recovery = await run.finish()
    print(
        verdict.line(
            "worker SIGKILL", events=EVENTS, kills=kills, restarts=supervisor.restarts, recover_s=f"{recovery:.1f}"
        )
    )
    assert kills == 3 and supervisor.restarts >= 3
    assert_clean(verdict)


async def test_worker_stopped_with_sigterm_finishes_in_flight_events(
    fault_settings: Callable[..., Any], fault_engine_for: Callable[[Settings], AsyncEngine], supervisor: Supervisor
) -> None:
    run = await under_load(fault_settings, fault_engine_for, 8_000)
    worker = supervisor.start("worker", run.settings)
    supervisor.start("projection", run.settings)
    await worker.wait_for_log("Ready")
    await asyncio.sleep(2)
    supervisor.retire_gracefully(worker)
    exit_code = worker.process.returncode if worker.process else None
    replacement = supervisor.start("worker", run.settings)
    verdict, recovery = await run.finish()
    print(verdict.line("worker SIGTERM", events=8_000, exit_code=exit_code, recover_s=f"{recovery:.1f}"))
    assert exit_code == 0
    assert replacement.running
    assert_clean(verdict)


async def test_two_workers_share_partitions_one_dies_then_one_joins(
    fault_settings: Callable[..., Any], fault_engine_for: Callable[[Settings], AsyncEngine], supervisor: Supervisor
) -> None:
    run = await under_load(fault_settings, fault_engine_for, EVENTS)
    first = supervisor.start("worker", run.settings)
    supervisor.start("worker", run.settings)
    supervisor.start("projection", run.settings)
    await asyncio.sleep(4)
    supervisor.retire(first)  # SIGKILL, and stays down: the other worker takes its partitions
    await asyncio.sleep(3)
    supervisor.start("worker", run.settings)  # a third joins: partitions move again
    verdict, recovery = await run.finish()
    print(verdict.line("two workers, one killed, one added", events=EVENTS, recover_s=f"{recovery:.1f}"))
    assert_clean(verdict)


async def test_a_burst_is_absorbed_with_bounded_memory(
    fault_settings: Callable[..., Any], fault_engine_for: Callable[[Settings], AsyncEngine], supervisor: Supervisor
) -> None:
    """A backlog far larger than any buffer: the worker's memory follows its bounded in-flight
    window, not the size of the backlog."""
    import psutil

    settings = await fault_settings()
    engine = fault_engine_for(settings)
    workload = Workload(settings, count=30_000, rate=50_000.0)  # the burst lands before the worker starts
    await workload.run()
    worker = supervisor.start("worker", settings)
    supervisor.start("projection", settings)
    assert worker.process is not None  # started above
    process = psutil.Process(worker.process.pid)
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    recovery = await settle(engine, workload)
    sampling = False
    await sampler
    verdict = await check(engine, workload.events, workload.acknowledged)
    print(verdict.line("burst", events=workload.count, worker_peak_rss_mb=peak // 2**20, drain_s=f"{recovery:.1f}"))
    assert_clean(verdict)
    # Generous bound: the point is that 30,000 queued events (about 12 MB on the wire, several times
    # that as Python objects) are not all held at once.
    assert peak < 400 * 2**20
