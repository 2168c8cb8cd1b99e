"""SIGTERM stops the projection while Postgres is away (issue 10/11): its retry loop waits through
``sleep_unless_stopped``, so the stop request ends it; nothing written is lost, and the next
projection picks up the uncommitted batch once Postgres is back."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.settings import Settings
from tests.faults.checker import check
from tests.faults.conftest import Supervisor
from tests.faults.stack import DedicatedStack
from tests.faults.test_worker_faults import assert_clean, settle
from tests.faults.workload import Workload

pytestmark = pytest.mark.faults


async def test_sigterm_stops_the_projection_while_postgres_is_away(
    fault_stack: DedicatedStack,
    fault_settings: Callable[..., Any],
    fault_engine_for: Callable[[Settings], AsyncEngine],
    supervisor: Supervisor,
) -> None:
    # A long backoff: without a stop-aware wait, SIGTERM would sit out each 20 s sleep.
    settings = await fault_settings(handler_backoff_seconds=5.0, handler_backoff_max_seconds=20.0)
    workload = Workload(settings, count=3_000, rate=1_000.0)
    supervisor.start("worker", settings)
    projection = supervisor.start("projection", settings)
    producing = asyncio.create_task(workload.run())
    await asyncio.sleep(1.5)
    await asyncio.to_thread(fault_stack.stop_postgres)
    try:
        await projection.wait_for_log("projection write failed", timeout=60)
        await asyncio.sleep(1)  # into a backoff sleep
        projection.retired = True
        assert projection.process is not None
        started = time.monotonic()
        projection.process.send_signal(signal.SIGTERM)
        # Generous: the point is that it exits on its own instead of needing SIGKILL.
        code = await asyncio.to_thread(projection.process.wait, 30)
        took = time.monotonic() - started
    finally:
        await asyncio.to_thread(fault_stack.start_postgres)
    print(f"projection exit code {code} {took:.1f}s after SIGTERM with Postgres down")
    assert code == 0, projection.log_tail()
    await producing
    supervisor.start("projection", settings)  # picks up from the last committed offsets
    engine = fault_engine_for(settings)
    await settle(engine, workload)
    assert_clean(await check(engine, workload.events, workload.acknowledged))
