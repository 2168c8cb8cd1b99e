"""The outbox bus and the relay on the real Postgres and Kafka: what a transaction commits is published
exactly once it commits; per-lead order holds across concurrent transactions; a standby relay takes
over from a dead leader."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from salesflow.domain.decoding import validate_envelope
from salesflow.domain.versions import latest, schema_uri
from salesflow.outbox import OutboxEventBus
from salesflow.producer.typed_events import LeadCreatedEvent, ProducerEvent, SequenceStepExecutedEvent
from salesflow.settings import Settings
from tests.integration.test_outbox_kit import Relays, outbox_rows, received, wait_drained

pytestmark = pytest.mark.integration


def step(tenant: str, lead: str, index: int) -> SequenceStepExecutedEvent:
    return SequenceStepExecutedEvent(
        tenant_id=tenant, lead_id=lead, sequence_id="seq-1", step_index=index, action="email", status="executed"
    )


async def test_a_rolled_back_transaction_publishes_nothing_a_committed_one_exactly_its_events(
    settings: Settings, service: tuple[str, AsyncEngine], relays: Relays
) -> None:
    url, engine = service
    relays.start(settings, url)
    sessions = async_sessionmaker(engine)
    tenant = f"acme-{uuid.uuid4().hex[:6]}"
    committed: list[ProducerEvent] = [
        LeadCreatedEvent(tenant_id=tenant, lead_id=f"lead-{n}", source="web_form") for n in range(5)
    ]
    committed.append(step(tenant, "lead-0", 0))
    rolled_back = [LeadCreatedEvent(tenant_id=tenant, lead_id=f"gone-{n}", source="api") for n in range(5)]

    async with sessions() as session, session.begin():
        bus = OutboxEventBus(session, settings.topics)
        for event in committed:
            await bus.publish(event, request_id="req-ok")
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            bus = OutboxEventBus(session, settings.topics)
            for event in rolled_back:
                await bus.publish(event, request_id="req-bad")
            raise RuntimeError("the business write failed after the events were published")
    # A transaction that is still open is not published either, however long the relay waits.
    async with sessions() as open_session:
        await open_session.begin()
        await OutboxEventBus(open_session, settings.topics).publish(step(tenant, "lead-open", 0))

        found = await received(settings, expected=len(committed), settle=3.0)
        await wait_drained(url)
        assert await outbox_rows(url) == 0  # the open transaction's row is invisible
        await open_session.rollback()

    assert sorted(r.event["id"] for r in found) == sorted(str(e.event_id) for e in committed)
    for record in found:
        event = next(e for e in committed if str(e.event_id) == record.event["id"])
        assert record.key == f"{tenant}:{event.lead_id}".encode()
        assert record.topic == settings.topics.source(event.event_type)
        assert record.headers["content-type"] == b"application/cloudevents+json"
        assert record.event["requestid"] == "req-ok"
        assert record.event["dataschema"] == schema_uri(event.event_type, latest(event.event_type))  # the newest
        assert record.event["time"] == event.occurred_at.isoformat().replace("+00:00", "Z")
        assert validate_envelope(record.event).tenantid == tenant


async def test_per_lead_order_holds_across_concurrent_transactions(
    settings: Settings, service: tuple[str, AsyncEngine], relays: Relays
) -> None:
    """Writers commit steps of a few shared leads concurrently, with random pauses between a publish
    and its commit, so transactions commit out of id order. Each lead's records reach Kafka in the
    order their transactions were serialised by the bus (recorded while its per-key lock is held)."""
    url, engine = service
    relays.start(settings, url, batch_size=50)
    sessions = async_sessionmaker(engine)
    tenant = f"order-{uuid.uuid4().hex[:6]}"
    leads = [f"lead-{n}" for n in range(6)]
    intended: dict[str, list[str]] = defaultdict(list)
    rng = random.Random(13)

    async def writer(n: int) -> None:
        for _ in range(15):
            lead = rng.choice(leads)
            async with sessions() as session, session.begin():
                bus = OutboxEventBus(session, settings.topics)
                for _ in range(rng.randint(1, 3)):
                    event = step(tenant, lead, len(intended[lead]))
                    await bus.publish(event)
                    intended[lead].append(str(event.event_id))  # under the lead's lock: its true order
                await asyncio.sleep(rng.uniform(0, 0.03))

    await asyncio.gather(*(writer(n) for n in range(8)))
    total = sum(len(ids) for ids in intended.values())
    found = await received(settings, expected=total)
    seen: dict[str, list[str]] = defaultdict(list)
    for record in sorted(found, key=lambda r: (r.partition, r.offset)):
        lead = record.event["data"]["lead_id"]
        if record.event["id"] not in seen[lead]:
            seen[lead].append(record.event["id"])
    # Records of one lead share a partition (one key), so partition order is their order.
    assert {
        lead: len({r.partition for r in found if r.event["data"]["lead_id"] == lead}) for lead in seen
    } == dict.fromkeys(seen, 1)
    assert dict(seen) == dict(intended)


async def test_a_second_publish_for_the_same_lead_waits_for_the_first_transaction(
    settings: Settings, service: tuple[str, AsyncEngine]
) -> None:
    """The per-key lock, seen directly: the second transaction's insert (and so its id) comes after the
    first one's commit; another lead is not held up."""
    _, engine = service
    sessions = async_sessionmaker(engine)
    async with sessions() as first:
        await first.begin()
        await OutboxEventBus(first, settings.topics).publish(step("acme", "lead-1", 0))
        async with sessions() as other_lead, other_lead.begin():
            await asyncio.wait_for(OutboxEventBus(other_lead, settings.topics).publish(step("acme", "lead-2", 0)), 10)
        async with sessions() as second:
            await second.begin()
            waiting = asyncio.create_task(OutboxEventBus(second, settings.topics).publish(step("acme", "lead-1", 1)))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            await first.commit()
            await asyncio.wait_for(waiting, 10)
            await second.commit()
    async with engine.connect() as conn:
        keys = [r.key for r in await conn.execute(text("SELECT key FROM salesflow_outbox ORDER BY id"))]
    assert keys == [b"acme:lead-1", b"acme:lead-2", b"acme:lead-1"]


async def test_a_standby_relay_takes_over_within_seconds_of_the_leaders_death(
    settings: Settings, service: tuple[str, AsyncEngine], relays: Relays
) -> None:
    url, engine = service
    sessions = async_sessionmaker(engine)
    leader = relays.start(settings, url)
    await leader.wait_for_log("outbox relay: leader")
    standby = relays.start(settings, url)
    await standby.wait_for_log("standing by")
    tenant = f"ha-{uuid.uuid4().hex[:6]}"

    async def commit(lead: str) -> LeadCreatedEvent:
        event = LeadCreatedEvent(tenant_id=tenant, lead_id=lead, source="api")
        async with sessions() as session, session.begin():
            await OutboxEventBus(session, settings.topics).publish(event)
        return event

    before = await commit("before")
    await wait_drained(url, timeout=30)
    await asyncio.sleep(2)  # several of the standby's lock attempts
    assert standby.times_logged("outbox relay: leader") == 0, "two leaders at once"

    leader.kill()
    died = time.monotonic()
    after = await commit("after")
    await standby.wait_for_log("outbox relay: leader", timeout=60)
    takeover = time.monotonic() - died
    await wait_drained(url, timeout=30)
    print(f"[outbox] standby took over {takeover:.2f} s after the leader's SIGKILL")
    found = await received(settings, expected=2)
    assert sorted(r.event["id"] for r in found) == sorted([str(before.event_id), str(after.event_id)])
