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
    settings = await fault_settings(db_retry_backoff_seconds=5.0, db_retry_backoff_max_seconds=20.0)
    engine = fault_engine_for(settings)
    before = Workload(settings, count=500, rate=1_000.0)
    during = Workload(settings, count=2_500, rate=1_000.0)
    supervisor.start("worker", settings)
    projection = supervisor.start("projection", settings)
    await before.run()
    await settle(engine, before)  # the projection is up and writing
    await asyncio.to_thread(fault_stack.stop_postgres)
    # Every event of this load arrives with Postgres away, so the projection has writes to fail, on a
    # machine of any speed (a load started before the stop could be written before it lands).
    producing = asyncio.create_task(during.run())
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
    engine = fault_engine_for(settings)  # connections made after Postgres came back
    await settle(engine, during)
    events = {**before.events, **during.events}
    assert_clean(await check(engine, events, before.acknowledged | during.acknowledged))
