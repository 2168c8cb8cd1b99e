"""The content type decides the CloudEvents mode on the real pipeline (issue 11, defect 6): a structured
event that also carries stray ``ce_*`` headers is processed as the envelope in its value says, and the
headers' id and tenant are never used; a record with the same key twice is dead-lettered (defect 5)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from salesflow.bootstrap import event_producer
from salesflow.db.engine import create_engine
from salesflow.domain.events import EventType
from salesflow.producer.envelope import encode, record_key
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import wait_for

pytestmark = pytest.mark.integration

STRAY_ID = UUID("00000000-0000-4000-8000-0000000000c6")


async def test_structured_event_with_stray_ce_headers_is_processed_from_its_value(
    settings_factory: SettingsFactory, service_factory: Any
) -> None:
    from salesflow.kafka_admin import create_topics

    settings = settings_factory()
    await create_topics(settings)
    service_factory("worker", settings)
    service_factory("projection", settings)
    event = event_dict(EventType.LEAD_CREATED, "tenant-a", lead_id="lead-stray")
    stray = [
        ("content-type", b"application/cloudevents+json; charset=UTF-8"),
        ("ce_specversion", b"1.0"),
        ("ce_id", str(STRAY_ID).encode()),
        ("ce_type", b"message.sent"),
        ("ce_tenantid", b"tenant-b"),
    ]
    duplicate = event_dict(EventType.LEAD_CREATED, "tenant-a", lead_id="lead-dup")
    duplicated = encode(duplicate).replace(b'"tenantid":', b'"tenantid":"tenant-b","tenantid":', 1)
    topic = settings.topics.source(EventType.LEAD_CREATED)
    async with event_producer(settings) as producer:
        await (await producer.send_raw(topic, encode(event), key=record_key(event), headers=stray))
        await (await producer.send_raw(topic, duplicated, key=record_key(duplicate)))
    engine = create_engine(settings.database_url)
    try:

        async def rows() -> list[Any] | None:
            async with engine.connect() as conn:
                found = (
                    await conn.execute(
                        text("SELECT id, tenant_id, type, status FROM events WHERE id = ANY(:ids) ORDER BY id"),
                        {"ids": [UUID(event["id"]), STRAY_ID, UUID(duplicate["id"])]},
                    )
                ).all()
                dead = (
                    await conn.execute(text("SELECT reason, raw FROM dead_letters WHERE topic = :t"), {"t": topic})
                ).all()
            processed = [r for r in found if r.status == "processed"]
            return [found, dead] if processed and dead else None

        found, dead = await wait_for(rows, timeout=90, what="the structured event and the dead letter")
    finally:
        await engine.dispose()
    assert [(str(r.id), r.tenant_id, r.type, r.status) for r in found] == [
        (event["id"], "tenant-a", "lead.created", "processed")
    ]
    assert [(r.reason, r.raw) for r in dead] == [("duplicate_key", duplicated)]
