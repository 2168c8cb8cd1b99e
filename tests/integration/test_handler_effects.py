"""Side effects once per event, on the real database, through the test kit (``run_handlers``: the
worker's dispatch, retry policy and injection, no Kafka)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.domain.events import CloudEvent, EventType
from salesflow.domain.outputs import Observation, Output
from salesflow.handlers.injection import Resources
from salesflow.handlers.registry import HandlerRegistry
from salesflow.settings import Settings
from salesflow.testing import lead_created, run_handlers
from salesflow.testing import pytest_plugin as kit
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.integration

# The kit's fixtures, on the session's database (below).
handler_resources = kit.handler_resources
handler_db = kit.handler_db

TABLE = "CREATE TABLE IF NOT EXISTS effect_writes (event_id uuid NOT NULL, tenant_id text NOT NULL, note text)"


@pytest.fixture(scope="module")
def handler_database_url(database_url: str) -> str:
    """The kit's database is the session's (migrated by tests/conftest.py)."""
    return database_url


@pytest.fixture(scope="module")
def handler_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory()


@pytest.fixture(autouse=True)
async def table(handler_db: AsyncSession) -> None:
    await handler_db.execute(text(TABLE))
    await handler_db.commit()


async def writes(db: AsyncSession, event_id: uuid.UUID) -> list[dict[str, Any]]:
    await db.rollback()
    found = await db.execute(
        text("SELECT tenant_id, note FROM effect_writes WHERE event_id = :e ORDER BY 1"), {"e": event_id}
    )
    return [dict(r._mapping) for r in found]


async def write(db: AsyncSession, event: CloudEvent[Any], note: str) -> None:
    await db.execute(
        text("INSERT INTO effect_writes (event_id, tenant_id, note) VALUES (:e, :t, :n)"),
        {"e": event.id, "t": event.tenantid, "n": note},
    )


async def test_a_transient_error_rolls_back_the_attempt_and_the_retry_applies_once(
    handler_resources: Resources, handler_db: AsyncSession
) -> None:
    registry = HandlerRegistry()
    calls: list[int] = []

    @registry.register(EventType.LEAD_CREATED, name="effects.flaky")
    async def flaky(db: AsyncSession, event: CloudEvent[Any]) -> None:
        calls.append(1)
        await write(db, event, f"attempt {len(calls)}")
        if len(calls) < 3:
            raise TimeoutError("crm timed out")

    event = lead_created()
    result = await run_handlers(event, registry=registry, resources=handler_resources)
    assert [(r.status, r.attempts) for r in result.reports] == [("ok", 3)]
    assert await writes(handler_db, event.id) == [{"tenant_id": "acme", "note": "attempt 3"}]


async def test_a_permanent_error_leaves_nothing_written_and_no_record(
    handler_resources: Resources, handler_db: AsyncSession
) -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED, name="effects.doomed")
    async def doomed(db: AsyncSession, event: CloudEvent[Any]) -> None:
        await write(db, event, "half done")
        raise KeyError("no such account")

    event = lead_created()
    result = await run_handlers(event, registry=registry, resources=handler_resources)
    assert result.error_message == "effects.doomed: KeyError: 'no such account'"
    assert result.reports[0].attempts == 1  # permanent: not retried
    assert await writes(handler_db, event.id) == []
    records = await handler_db.execute(
        text("SELECT count(*) FROM handler_effects WHERE event_id = :e"), {"e": event.id}
    )
    assert records.scalar() == 0


async def test_concurrent_deliveries_of_one_event_apply_it_once(
    handler_resources: Resources, handler_db: AsyncSession
) -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED, name="effects.slow")
    async def slow(db: AsyncSession, event: CloudEvent[Any]) -> None:
        await write(db, event, "applied")
        await asyncio.sleep(0.2)  # the other delivery arrives while this one is uncommitted

    event = lead_created()
    results = await asyncio.gather(
        *(run_handlers(event, registry=registry, resources=handler_resources) for _ in range(4))
    )
    assert sorted(r.reports[0].attempts for r in results) == [0, 0, 0, 1]
    assert await writes(handler_db, event.id) == [{"tenant_id": "acme", "note": "applied"}]


async def test_one_event_id_from_two_tenants_is_two_events(
    handler_resources: Resources, handler_db: AsyncSession
) -> None:
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED, name="effects.per_tenant")
    async def per_tenant(db: AsyncSession, event: CloudEvent[Any]) -> None:
        await write(db, event, "applied")

    shared = uuid.uuid4()
    for tenant in ("acme", "attacker"):
        result = await run_handlers(
            lead_created(id=shared, tenantid=tenant), registry=registry, resources=handler_resources
        )
        assert result.reports[0].attempts == 1
    assert await writes(handler_db, shared) == [
        {"tenant_id": "acme", "note": "applied"},
        {"tenant_id": "attacker", "note": "applied"},
    ]


async def test_settings_http_and_logger_are_injected_and_outputs_returned(
    handler_resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    registry = HandlerRegistry()
    seen: dict[str, Any] = {}

    @registry.register(EventType.LEAD_CREATED, name="effects.notify", on_replay="skip")
    async def notify(
        event: CloudEvent[Any], settings: Settings, http: httpx.AsyncClient, log: logging.Logger
    ) -> list[Output]:
        seen.update(settings=settings, http=http)
        log.info("notifying about %s", event.lead_id)
        return [Observation(metric="messages_sent_total", labels=(("channel", "email"),))]

    with caplog.at_level(logging.INFO, logger="salesflow.handler"):
        result = await run_handlers(lead_created(lead_id="l-7"), registry=registry, resources=handler_resources)
    # A metric the worker defines: an unknown one fails the handler (test_processor covers that).
    assert result.outputs == [Observation(metric="messages_sent_total", labels=(("channel", "email"),))]
    assert seen["settings"] is handler_resources.settings and isinstance(seen["http"], httpx.AsyncClient)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("salesflow.handler.effects.notify", "notifying about l-7")
    ]
    skipped = await run_handlers(lead_created(), registry=registry, resources=handler_resources, replay=True)
    assert skipped.outputs == [] and skipped.reports[0].attempts == 0  # no db: "skip" goes by the replay flag


@pytest.fixture
async def own_database(handler_settings: Settings) -> AsyncIterator[str]:
    """A second, empty database: a handler database of its own (no migration ran there)."""
    name = f"sf_handlers_{uuid.uuid4().hex[:8]}"
    await kit.admin_sql(handler_settings.database_url, f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    yield make_url(handler_settings.database_url).set(database=name).render_as_string(hide_password=False)
    await kit.admin_sql(handler_settings.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_handler_database_of_its_own_gets_the_record_table_on_first_use(
    handler_settings: Settings, own_database: str
) -> None:
    from pydantic import SecretStr

    settings = handler_settings.model_copy(update={"handler_database_url": SecretStr(own_database)})
    registry = HandlerRegistry()

    @registry.register(EventType.LEAD_CREATED, name="effects.elsewhere")
    async def elsewhere(db: AsyncSession, event: CloudEvent[Any]) -> None:
        await db.execute(text("SELECT 1"))

    event = lead_created()
    first = await run_handlers(event, registry=registry, settings=settings)
    again = await run_handlers(event, registry=registry, settings=settings)
    assert [first.reports[0].attempts, again.reports[0].attempts] == [1, 0]
