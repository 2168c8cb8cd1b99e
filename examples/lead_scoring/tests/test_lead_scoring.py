"""Lead scoring through the test kit: the same dispatch, retries, injection and once-per-event record
as the worker, on a real (throwaway) Postgres database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from lead_scoring import register
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.handlers.injection import Resources
from salesflow.handlers.registry import HandlerRegistry
from salesflow.testing import lead_created, message_sent, run_handlers


@pytest.fixture
def registry() -> HandlerRegistry:
    made = HandlerRegistry()
    register(made)
    return made


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def rows(db: AsyncSession, sql: str, **params: Any) -> list[dict[str, Any]]:
    await db.rollback()  # a fresh snapshot: see what the handlers committed since
    return [dict(r._mapping) for r in await db.execute(text(sql), params)]


async def score_of(db: AsyncSession, tenant: str, lead: str) -> list[dict[str, Any]]:
    return await rows(
        db, "SELECT score, events FROM lead_scores WHERE tenant_id = :t AND lead_id = :l", t=tenant, l=lead
    )


async def test_a_referral_lead_is_scored_and_alerted_once(
    registry: HandlerRegistry, handler_resources: Resources, handler_db: AsyncSession, tenant: str
) -> None:
    event = lead_created(tenantid=tenant, lead_id="l-1", source="referral")
    result = await run_handlers(event, registry=registry, resources=handler_resources)
    assert [(r.handler, r.status, r.attempts) for r in result.reports] == [
        ("lead_scoring.score", "ok", 1),
        ("lead_scoring.alert_on_referral", "ok", 1),
    ]
    assert await score_of(handler_db, tenant, "l-1") == [{"score": 30, "events": 1}]
    alerts = await rows(handler_db, "SELECT lead_id, event_id FROM lead_alerts WHERE tenant_id = :t", t=tenant)
    assert alerts == [{"lead_id": "l-1", "event_id": event.id}]


async def test_a_redelivery_is_skipped_and_a_replay_recomputes_only_the_score(
    registry: HandlerRegistry, handler_resources: Resources, handler_db: AsyncSession, tenant: str
) -> None:
    event = lead_created(tenantid=tenant, lead_id="l-2", source="referral")
    await run_handlers(event, registry=registry, resources=handler_resources)

    again = await run_handlers(event, registry=registry, resources=handler_resources)
    assert [(r.status, r.attempts) for r in again.reports] == [("ok", 0), ("ok", 0)]  # both skipped

    replayed = await run_handlers(event, registry=registry, resources=handler_resources, replay=True)
    assert [(r.status, r.attempts) for r in replayed.reports] == [("ok", 1), ("ok", 0)]  # score recomputed

    assert await score_of(handler_db, tenant, "l-2") == [{"score": 30, "events": 1}]
    assert await rows(handler_db, "SELECT count(*) AS n FROM lead_alerts WHERE tenant_id = :t", t=tenant) == [{"n": 1}]
    runs = await rows(
        handler_db,
        "SELECT handler, runs FROM handler_effects WHERE tenant_id = :t ORDER BY handler",
        t=tenant,
    )
    assert runs == [
        {"handler": "lead_scoring.alert_on_referral", "runs": 1},
        {"handler": "lead_scoring.score", "runs": 2},
    ]


async def test_points_add_up_per_lead_and_tenants_never_mix(
    registry: HandlerRegistry, handler_resources: Resources, handler_db: AsyncSession, tenant: str
) -> None:
    other = f"{tenant}-other"
    shared_id = uuid.uuid4()  # the same event id from two tenants: two events, never merged
    await run_handlers(
        lead_created(tenantid=tenant, lead_id="l-3", source="web_form", id=shared_id),
        registry=registry,
        resources=handler_resources,
    )
    await run_handlers(
        lead_created(tenantid=other, lead_id="l-3", source="api", id=shared_id),
        registry=registry,
        resources=handler_resources,
    )
    await run_handlers(message_sent(tenantid=tenant, lead_id="l-3"), registry=registry, resources=handler_resources)

    assert await score_of(handler_db, tenant, "l-3") == [{"score": 25, "events": 2}]
    assert await score_of(handler_db, other, "l-3") == [{"score": 10, "events": 1}]
    assert await rows(
        handler_db, "SELECT count(*) AS n FROM lead_alerts WHERE tenant_id IN (:a, :b)", a=tenant, b=other
    ) == [{"n": 0}]


async def test_a_lead_that_is_not_a_referral_gets_no_alert_but_a_record(
    registry: HandlerRegistry, handler_resources: Resources, handler_db: AsyncSession, tenant: str
) -> None:
    await run_handlers(
        lead_created(tenantid=tenant, lead_id="l-4", source="import"), registry=registry, resources=handler_resources
    )
    assert await score_of(handler_db, tenant, "l-4") == [{"score": 5, "events": 1}]
    assert await rows(handler_db, "SELECT count(*) AS n FROM lead_alerts WHERE tenant_id = :t", t=tenant) == [{"n": 0}]
