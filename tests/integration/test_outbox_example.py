"""The example lead service (examples/lead_service): ``create_lead`` commits the lead and its event
together, a failed one leaves neither, and the relay publishes exactly the created leads' events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from examples.lead_service import migrate
from examples.lead_service.models import leads, outbox
from examples.lead_service.service import LeadService
from salesflow.db.engine import create_engine
from salesflow.domain.events import LeadSource
from salesflow.settings import Settings
from tests.conftest import _admin_sql
from tests.infra import Endpoints
from tests.integration.test_outbox_kit import Relays, received, wait_drained

pytestmark = pytest.mark.integration


@pytest.fixture
async def lead_db(endpoints: Endpoints) -> AsyncIterator[tuple[str, AsyncEngine]]:
    admin = make_url(endpoints.database_url)
    name = f"sf_leads_{uuid.uuid4().hex[:10]}"
    await _admin_sql(admin, f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    yield url, engine
    await engine.dispose()
    await _admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        lead_rows = (await conn.execute(select(func.count()).select_from(leads))).scalar_one()
        outbox_rows = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    return lead_rows, outbox_rows


async def test_create_lead_commits_the_lead_and_its_event_or_neither(
    settings: Settings, lead_db: tuple[str, AsyncEngine]
) -> None:
    _, engine = lead_db
    sessions = async_sessionmaker(engine)
    async with sessions() as session:
        await LeadService(session, topics=settings.topics).create_lead(
            "acme", name="Ada", email="ada@example.com", source=LeadSource.WEB_FORM, request_id="req-1"
        )
    assert await counts(engine) == (1, 1)
    async with sessions() as session:
        with pytest.raises(IntegrityError):  # the same email again: the lead is refused ...
            await LeadService(session, topics=settings.topics).create_lead(
                "acme", name="Ada again", email="ada@example.com", source=LeadSource.API
            )
    assert await counts(engine) == (1, 1)  # ... and no event for it exists
    async with sessions() as session:
        with pytest.raises(ValueError):  # an event that breaks the contract: no lead either
            await LeadService(session, topics=settings.topics).create_lead(
                "x" * 300, name="Bob", email="bob@example.com", source=LeadSource.API
            )
    assert await counts(engine) == (1, 1)


async def test_the_relay_publishes_the_created_leads(
    settings: Settings, lead_db: tuple[str, AsyncEngine], relays: Relays
) -> None:
    url, engine = lead_db
    relays.start(settings, url)
    sessions = async_sessionmaker(engine)
    created = []
    for n in range(3):
        async with sessions() as session:
            created.append(
                await LeadService(session, topics=settings.topics).create_lead(
                    "acme", name=f"Lead {n}", email=f"l{n}@example.com", source=LeadSource.REFERRAL, autopilot=n == 0
                )
            )
    await wait_drained(url)
    found = await received(settings, expected=3)
    assert sorted(r.event["data"]["lead_id"] for r in found) == sorted(str(i) for i in created)
    assert {r.event["type"] for r in found} == {"lead.created"}
    assert [r.event["data"]["autopilot"] for r in found if r.event["data"]["lead_id"] == str(created[0])] == [True]
