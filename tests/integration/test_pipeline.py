"""The whole path on the real broker and database: source topics -> worker -> outcomes -> projection."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.bootstrap import event_producer
from salesflow.domain.events import EventType
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import wait_for

pytestmark = pytest.mark.integration

# Tenants of this module alone: the views aggregate per tenant over the whole session database.
_RUN = uuid.uuid4().hex[:6]
TENANTS = (f"acme-{_RUN}", f"globex-{_RUN}")
LEADS_PER_TENANT = 6

INVALID: list[tuple[bytes, str]] = [
    (b"definitely not json", "not_json"),
    (b'["an", "array"]', "not_an_object"),
    (orjson.dumps({**event_dict(EventType.LEAD_CREATED), "type": "lead.merged"}), "unknown_type"),
    (orjson.dumps({**event_dict(EventType.LEAD_CREATED), "tenantid": None}), "invalid_field"),
    (orjson.dumps({k: v for k, v in event_dict(EventType.MESSAGE_SENT).items() if k != "time"}), "missing_field"),
]


def lead_journeys() -> list[dict[str, Any]]:
    """Per tenant, leads that are created, contacted once, and finish a 3-step sequence; every even
    lead is on autopilot with one action costing 0.25 USD that earns 2.50 USD."""
    events: list[dict[str, Any]] = []
    for tenant in TENANTS:
        for n in range(LEADS_PER_TENANT):
            lead = f"lead-{n}"
            autopilot = n % 2 == 0
            t = n * 10.0
            events.append(
                event_dict(
                    EventType.LEAD_CREATED,
                    tenant,
                    t,
                    lead_id=lead,
                    autopilot=autopilot,
                    source="web_form" if n < 4 else "referral",
                )
            )
            if autopilot:
                events.append(
                    event_dict(
                        EventType.AUTOPILOT_ACTION_EXECUTED,
                        tenant,
                        t + 1,
                        lead_id=lead,
                        action_id=f"act-{n}",
                        cost_usd=0.25,
                        value_usd=2.5,
                    )
                )
            events.append(
                event_dict(
                    EventType.MESSAGE_SENT,
                    tenant,
                    t + 2,
                    lead_id=lead,
                    message_id=f"m-{n}",
                    queued_at="2026-11-24T11:59:30Z",
                    sent_at="2026-11-24T12:00:00Z",
                )
            )
            for step in range(3):
                events.append(
                    event_dict(
                        EventType.SEQUENCE_STEP_EXECUTED,
                        tenant,
                        t + 3 + step,
                        lead_id=lead,
                        step_index=step,
                        step_count=3,
                        status="executed",
                    )
                )
    return events


@pytest.fixture(scope="module")
def pipeline_settings(settings_factory: SettingsFactory, service_factory: Any) -> Settings:
    import asyncio

    from salesflow.kafka_admin import create_topics

    settings = settings_factory()
    asyncio.run(create_topics(settings))
    service_factory("worker", settings)
    service_factory("projection", settings)
    return settings


@pytest.fixture(scope="module")
def journeys() -> list[dict[str, Any]]:
    return lead_journeys()


async def produce(settings: Settings, events: list[dict[str, Any]], invalid: Sequence[tuple[bytes, str]] = ()) -> None:
    async with event_producer(settings) as producer:
        report = await producer.send_all(events)
        assert not report.failed
        for value, _ in invalid:
            await (await producer.send_raw(settings.topics.source(EventType.LEAD_CREATED), value, key=b"acme:x"))


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(text(sql), params)]


async def final_count(engine: AsyncEngine, ids: list[UUID]) -> int:
    found = await rows(engine, "SELECT count(*) AS n FROM events WHERE id = ANY(:ids) AND status <> 'pending'", ids=ids)
    return int(found[0]["n"])


@pytest.fixture(scope="module")
async def processed(
    pipeline_settings: Settings, journeys: list[dict[str, Any]], database_url: str
) -> AsyncIterator[AsyncEngine]:
    from salesflow.db.engine import create_engine

    engine = create_engine(database_url)
    await produce(pipeline_settings, journeys, INVALID)
    ids = [UUID(e["id"]) for e in journeys]
    await wait_for(lambda: _all_final(engine, ids), timeout=120, what="every valid event to be final")
    await wait_for(lambda: _dead_letters(engine, pipeline_settings, len(INVALID)), timeout=60, what="dead letters")
    yield engine
    await engine.dispose()


async def _all_final(engine: AsyncEngine, ids: list[UUID]) -> bool:
    return await final_count(engine, ids) == len(ids)


async def _dead_letters(engine: AsyncEngine, settings: Settings, expected: int) -> bool:
    found = await rows(
        engine,
        "SELECT count(*) AS n FROM dead_letters WHERE topic = :t",
        t=settings.topics.source(EventType.LEAD_CREATED),
    )
    count: int = found[0]["n"]
    return count >= expected


async def test_every_valid_event_is_processed_with_its_type_tenant_and_time(
    processed: AsyncEngine, journeys: list[dict[str, Any]]
) -> None:
    found = {
        r["id"]: r
        for r in await rows(
            processed, "SELECT * FROM events WHERE id = ANY(:ids)", ids=[UUID(e["id"]) for e in journeys]
        )
    }
    for event in journeys:
        row = found[UUID(event["id"])]
        assert row["status"] == "processed", row
        assert row["type"] == event["type"]
        assert row["tenant_id"] == event["tenantid"]
        assert row["created_at"].isoformat().replace("+00:00", "Z") == event["time"]
        assert row["processed_at"] is not None and row["error_message"] is None
        assert row["payload"]["data"]["lead_id"] == event["data"]["lead_id"]
        assert row["source_topic"].endswith(".v1") and row["source_offset"] >= 0


async def test_every_invalid_record_is_dead_lettered_with_its_reason(
    processed: AsyncEngine, pipeline_settings: Settings
) -> None:
    found = await rows(
        processed,
        "SELECT reason, raw FROM dead_letters WHERE topic = :t",
        t=pipeline_settings.topics.source(EventType.LEAD_CREATED),
    )
    assert sorted((r["raw"], r["reason"]) for r in found) == sorted(INVALID)


async def test_facts_and_views_hold_the_expected_numbers(processed: AsyncEngine) -> None:
    funnel = await rows(
        processed,
        "SELECT tenant_id, stage, sum(leads)::int AS leads FROM funnel_daily WHERE tenant_id = ANY(:t) GROUP BY 1, 2",
        t=list(TENANTS),
    )
    assert {(r["tenant_id"], r["stage"]): r["leads"] for r in funnel} == {
        (tenant, stage): LEADS_PER_TENANT
        for tenant in TENANTS
        for stage in ("created", "contacted", "in_sequence", "sequence_completed")
    }
    roi = await rows(
        processed,
        "SELECT tenant_id, sum(actions)::int AS actions, sum(cost_usd) AS cost, "
        "sum(value_usd) AS value, sum(value_usd) / sum(cost_usd) AS roi "
        "FROM ai_roi_daily WHERE tenant_id = ANY(:t) GROUP BY 1",
        t=list(TENANTS),
    )
    autopilot_leads = (LEADS_PER_TENANT + 1) // 2
    for r in roi:
        assert r["actions"] == autopilot_leads
        assert r["cost"] == Decimal("0.25") * autopilot_leads
        assert r["value"] == Decimal("2.5") * autopilot_leads
        assert r["roi"] == Decimal(10)
    sources = await rows(
        processed,
        "SELECT tenant_id, source, sum(leads)::int AS leads FROM attribution_daily "
        "WHERE touch = 'first_touch' AND tenant_id = ANY(:t) GROUP BY 1, 2",
        t=list(TENANTS),
    )
    assert {(r["tenant_id"], r["source"]): r["leads"] for r in sources} == {
        (t, s): n for t in TENANTS for s, n in (("web_form", 4), ("referral", LEADS_PER_TENANT - 4))
    }
    latencies = await rows(
        processed, "SELECT DISTINCT latency_seconds FROM message_facts WHERE tenant_id = ANY(:t)", t=list(TENANTS)
    )
    assert latencies == [{"latency_seconds": 30.0}]


async def _fact_snapshot(engine: AsyncEngine) -> dict[str, Counter[str]]:
    snapshot: dict[str, Counter[str]] = {}
    for table in ("funnel_facts", "attribution_touches", "ai_action_facts", "message_facts", "sequence_step_facts"):
        found = await rows(engine, f"SELECT * FROM {table} WHERE tenant_id = ANY(:t)", t=list(TENANTS))
        snapshot[table] = Counter(str(sorted((k, str(v)) for k, v in r.items() if k != "updated_at")) for r in found)
    return snapshot


async def test_producing_the_same_events_again_changes_no_fact(
    processed: AsyncEngine, pipeline_settings: Settings, journeys: list[dict[str, Any]]
) -> None:
    before = await _fact_snapshot(processed)
    ids = [UUID(e["id"]) for e in journeys]
    offsets_sql = "SELECT id, source_offset FROM events WHERE id = ANY(:ids)"
    offsets_before = {r["id"]: r["source_offset"] for r in await rows(processed, offsets_sql, ids=ids)}
    await produce(pipeline_settings, journeys)

    async def all_reprocessed() -> bool:
        # The duplicates are new records at new offsets: their outcomes move each row's source offset.
        now = {r["id"]: r["source_offset"] for r in await rows(processed, offsets_sql, ids=ids)}
        return all(now[i] > offsets_before[i] for i in ids)

    await wait_for(all_reprocessed, timeout=90, what="the duplicates' outcomes to be projected")
    assert await _fact_snapshot(processed) == before


async def test_a_plain_kafka_client_can_produce_an_event(processed: AsyncEngine, pipeline_settings: Settings) -> None:
    event = event_dict(EventType.MESSAGE_SENT, "acme", lead_id="lead-kcat")
    await asyncio.to_thread(
        subprocess.run,
        [
            "kcat",
            "-P",
            "-b",
            pipeline_settings.kafka_bootstrap_servers,
            "-t",
            pipeline_settings.topics.source(EventType.MESSAGE_SENT),
            "-k",
            "acme:lead-kcat",
            "-H",
            "content-type=application/cloudevents+json",
            "-X",
            "partitioner=murmur2_random",  # our producer's (Java's) partitioning: see test_partitioning.py
        ],
        input=orjson.dumps(event),
        check=True,
        timeout=30,
    )
    await wait_for(lambda: final_count(processed, [UUID(event["id"])]), timeout=60, what="the kcat event")
    found = await rows(processed, "SELECT status, type FROM events WHERE id = :id", id=UUID(event["id"]))
    assert found == [{"status": "processed", "type": "message.sent"}]
