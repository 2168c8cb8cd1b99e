"""The broker dies (SIGKILL) or Postgres goes away for a while, during produce and consume: nothing
acknowledged is lost, nothing is applied twice, and the pipeline recovers on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.settings import Settings
from tests.faults.checker import check
from tests.faults.conftest import Supervisor
from tests.faults.stack import DedicatedStack
from tests.faults.test_worker_faults import assert_clean, settle
from tests.faults.workload import Workload
from tests.harness import wait_for

pytestmark = pytest.mark.faults


async def test_broker_killed_with_sigkill_during_produce_and_consume(
    fault_stack: DedicatedStack,
    fault_settings: Callable[..., Any],
    fault_engine_for: Callable[[Settings], AsyncEngine],
    supervisor: Supervisor,
) -> None:
    settings = await fault_settings()
    engine = fault_engine_for(settings)
    workload = Workload(settings, count=10_000, rate=1_000.0)
    worker = supervisor.start("worker", settings)
    supervisor.start("projection", settings)
    await worker.wait_for_log("Ready")
    producing = asyncio.create_task(workload.run())
    await asyncio.sleep(3)
    await asyncio.to_thread(fault_stack.kill_broker)
    down_at = time.monotonic()
    await asyncio.sleep(4)
    await asyncio.to_thread(fault_stack.start_broker)
    downtime = time.monotonic() - down_at
    await producing
    recovery = await settle(engine, workload, timeout=300)
    verdict = await check(engine, workload.events, workload.acknowledged)
    print(
        verdict.line(
            "broker SIGKILL",
            events=workload.count,
            failed_sends=workload.failed_sends,
            broker_down_s=f"{downtime:.1f}",
            service_restarts=supervisor.restarts,
            recover_s=f"{recovery:.1f}",
        )
    )
    assert_clean(verdict)


async def test_postgres_stopped_for_several_seconds(
    fault_stack: DedicatedStack,
    fault_settings: Callable[..., Any],
    fault_engine_for: Callable[[Settings], AsyncEngine],
    supervisor: Supervisor,
) -> None:
    settings = await fault_settings()
    engine = fault_engine_for(settings)
    workload = Workload(settings, count=10_000, rate=1_000.0)
    supervisor.start("worker", settings)
    projection = supervisor.start("projection", settings)
    producing = asyncio.create_task(workload.run())

    async def projection_writing() -> bool:
        async with engine.connect() as conn:
            return bool((await conn.execute(text("SELECT EXISTS (SELECT 1 FROM events)"))).scalar())

    # Stop Postgres only once the projection is writing: on a busy machine its start-up alone can
    # outlast a fixed delay, and then the outage would fall before it ever wrote (nothing tested).
    await wait_for(projection_writing, timeout=120, every=0.5, what="the projection to write its first rows")
    await asyncio.sleep(1)
    await engine.dispose()  # its pooled connections would only see the restart as errors
    await asyncio.to_thread(fault_stack.stop_postgres)
    await asyncio.sleep(6)
    await asyncio.to_thread(fault_stack.start_postgres)
    await producing
    recovery = await settle(engine, workload)
    verdict = await check(engine, workload.events, workload.acknowledged)
    retried = "projection write failed" in projection.log_path.read_text(errors="replace")
    print(
        verdict.line(
            "postgres stopped 6s",
            events=workload.count,
            projection_retried=retried,
            service_restarts=supervisor.restarts,
            recover_s=f"{recovery:.1f}",
        )
    )
    assert retried, "the projection never saw Postgres go away: the test did not test anything"
    assert supervisor.restarts == 0, "the projection should ride out the outage, not crash"
    assert_clean(verdict)
