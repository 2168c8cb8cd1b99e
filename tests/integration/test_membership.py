"""Static membership against the real broker: two live processes claiming one instance id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from salesflow.membership import EXIT_FENCED
from salesflow.settings import Settings
from tests.faults.group_watch import GroupWatch
from tests.harness import Service, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("command", "engine", "joined"),
    [
        ("worker", "faust", "Successfully synced group"),
        ("worker", "batch", "Ready (batch engine"),
        ("projection", "faust", "Successfully synced group"),
    ],
)
async def test_two_live_members_with_one_instance_id_end_in_a_clear_error(
    settings: Settings, service_factory: Callable[[str, Settings], Service], command: str, engine: str, joined: str
) -> None:
    claimed = settings.model_copy(
        update={"instance_id": f"dup-{command}", "log_format": "text", "worker_engine": engine}
    )
    first = service_factory(command, claimed)
    await first.wait_for_log(joined)
    second = service_factory(command, claimed)

    async def one_exited() -> Service | None:
        return next((s for s in (first, second) if not s.running), None)

    fenced = await wait_for(one_exited, timeout=90, every=0.5, what="one of the two to exit")
    survivor = second if fenced is first else first
    assert fenced.process is not None and fenced.process.returncode == EXIT_FENCED
    line = next(line for line in fenced.log_tail(80).splitlines() if "claims the group instance id" in line)
    assert f"'dup-{command}'" in line and "SALESFLOW_INSTANCE_ID" in line
    # The broker keeps the id with the other one, which goes on running.
    await asyncio.sleep(5)
    assert survivor.running, survivor.log_tail()


async def test_a_worker_and_a_projection_on_one_host_get_distinct_default_ids(
    settings: Settings, service_factory: Callable[[str, Settings], Service]
) -> None:
    services = [service_factory(c, settings) for c in ("worker", "worker", "projection")]
    # The broker's view (as `kafka-consumer-groups --describe` shows it), whatever the worker's engine.
    workers = GroupWatch(settings, settings.processor_group).start()
    projection = GroupWatch(settings, settings.projection_group).start()
    try:
        members = {**await workers.until_settled(2), **await projection.until_settled(1)}
        await asyncio.sleep(5)
        assert all(s.running for s in services)  # none fenced the other
    finally:
        await workers.stop()
        await projection.stop()
    ids = sorted(members)
    assert len(ids) == 3, ids
    assert sum("-worker-" in i for i in ids) == 2 and sum("-projection-" in i for i in ids) == 1, ids
