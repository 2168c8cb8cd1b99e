"""A handler that fails transiently for a while and then recovers, and one that always fails."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.settings import Settings
from tests.faults.checker import check
from tests.faults.conftest import Supervisor
from tests.faults.plugin_names import DOOMED_PREFIX, FLAKY_SECONDS
from tests.faults.test_worker_faults import settle
from tests.faults.workload import Workload

pytestmark = pytest.mark.faults


def doom_every_seventh_lead(event: dict[str, Any]) -> dict[str, Any]:
    lead = event["data"]["lead_id"]
    if event["type"] == "lead.created" and int(lead.rsplit("-", 1)[-1], 16) % 7 == 0:
        event["data"]["lead_id"] = DOOMED_PREFIX + lead
    return event


async def test_transient_failures_recover_and_permanent_failures_fail_with_the_error(
    fault_settings: Callable[..., Any],
    fault_engine_for: Callable[[Settings], AsyncEngine],
    supervisor: Supervisor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = await fault_settings(
        handler_modules="tests.faults.plugins",
        handler_max_attempts=12,
        handler_backoff_seconds=0.2,
        handler_backoff_max_seconds=1.0,
    )
    engine = fault_engine_for(settings)
    workload = Workload(settings, count=3_000, rate=500.0, transform=doom_every_seventh_lead)
    # The CRM the flaky handler calls is down for the first 2 seconds of the stream.
    monkeypatch.setenv(FLAKY_SECONDS, "2")
    supervisor.start("worker", settings)
    supervisor.start("projection", settings)
    await asyncio.create_task(workload.run())
    await settle(engine, workload)

    doomed = {
        i
        for i, e in workload.events.items()
        if e["data"]["lead_id"].startswith(DOOMED_PREFIX) and e["type"] == "lead.created"
    }
    verdict = await check(
        engine, workload.events, workload.acknowledged, expected_status=dict.fromkeys(doomed, "failed")
    )
    async with engine.connect() as conn:
        failed = (
            await conn.execute(
                text("SELECT id, attempts, error_message FROM events WHERE status = 'failed' AND id = ANY(:ids)"),
                {"ids": [UUID(i) for i in workload.acknowledged]},
            )
        ).all()
        retried = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM events WHERE status = 'processed' AND attempts > 1 AND type = 'message.sent' "
                    "AND id = ANY(:ids)"
                ),
                {"ids": [UUID(i) for i in workload.acknowledged]},
            )
        ).scalar_one()
    print(
        verdict.line(
            "handler faults",
            events=workload.count,
            doomed=len(doomed),
            failed=len(failed),
            processed_after_retries=retried,
        )
    )
    assert doomed and {str(r.id) for r in failed} == doomed & workload.acknowledged
    assert all(
        r.attempts == 1 and "faults.doomed_enrichment: ValueError: enrichment rejected lead" in r.error_message
        for r in failed
    ), "a permanent error is not retried and its message is kept"
    assert retried > 0, "messages sent while the CRM was down should succeed after retries"
    assert (verdict.lost, verdict.duplicates, verdict.wrong_status) == (0, 0, 0)
