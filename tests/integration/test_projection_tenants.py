"""Issue 11, defect 2: an event belongs to the tenant that first sent its id.

Tenant A and tenant B send events with the same id X. Whichever the projection writes first owns X;
every record of the other tenant with id X (its pending row, its outcome and facts, its dead letter)
is rejected as ``id_conflict`` and kept, and the owner's row, payload and facts stay as they were.
Both orders, within one batch and across batches; and the API never shows one tenant the other's.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.api import ApiSettings, create_app
from salesflow.domain import records as r
from salesflow.domain.events import EventType
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.harness import wait_for
from tests.integration.projection_kit import (
    Topics,
    committed_to_end,
    event_rows,
    outcome_of,
    rejected,
    rows,
    running_projection,
)

pytestmark = pytest.mark.integration


def twins(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two events of different tenants, leads and payloads, with one id."""
    run = settings.topic_prefix.split(".")[0]
    a = event_dict(EventType.LEAD_CREATED, f"a-{run}", lead_id="lead-a", campaign="a-campaign")
    b = event_dict(EventType.LEAD_CREATED, f"b-{run}", lead_id="lead-b", campaign="b-campaign")
    b["id"] = a["id"]
    return a, b


async def send_all(topics: Topics, event: dict[str, Any], kinds: tuple[str, ...]) -> None:
    await asyncio.sleep(0.01)  # "first" is by the records' timestamps: milliseconds apart
    for kind in kinds:
        if kind == "pending":
            await topics.source(event)
        elif kind == "outcome":
            await topics.outcome(outcome_of(event))
        else:  # an invalid copy of it: the worker's dead letter
            invalid = orjson.dumps({**event, "specversion": "0.3"})
            headers = [(r.DLQ_REASON, b"unsupported_specversion"), (r.DLQ_EVENT_ID, event["id"].encode())]
            await topics.dead_letter(invalid, headers)


async def assert_owned_by(
    engine: AsyncEngine, settings: Settings, owner: dict[str, Any], other: dict[str, Any]
) -> None:
    row = (await event_rows(engine, [owner["id"]]))[owner["id"]]
    assert row["tenant_id"] == owner["tenantid"] and row["lead_id"] == owner["data"]["lead_id"]
    if row["payload"] is not None:
        assert row["payload"]["tenantid"] == owner["tenantid"]
        assert row["payload"]["data"]["campaign"] == owner["data"]["campaign"]
    facts = await rows(
        engine, "SELECT tenant_id, lead_id FROM funnel_facts WHERE event_id = :i", i=uuid.UUID(owner["id"])
    )
    assert all((f["tenant_id"], f["lead_id"]) == (owner["tenantid"], owner["data"]["lead_id"]) for f in facts)
    assert await rows(engine, "SELECT 1 FROM funnel_facts WHERE tenant_id = :t", t=other["tenantid"]) == []
    conflicts = [x for x in (await rejected(engine, settings)).values() if x["reason"] == "id_conflict"]
    assert conflicts and all(x["tenant_id"] == other["tenantid"] for x in conflicts)
    assert all(str(x["event_id"]) == owner["id"] for x in conflicts)


KINDS = [("pending",), ("outcome",), ("pending", "outcome"), ("pending", "outcome", "dead_letter")]


@pytest.mark.parametrize("kinds", KINDS, ids=lambda k: "+".join(k))
@pytest.mark.parametrize("b_first", [False, True], ids=["a-first", "b-first"])
async def test_the_second_tenant_is_rejected_within_one_batch(
    settings: Settings, engine: AsyncEngine, kinds: tuple[str, ...], b_first: bool
) -> None:
    a, b = twins(settings)
    first, second = (b, a) if b_first else (a, b)
    async with Topics(settings) as topics:
        await send_all(topics, first, kinds)
        await send_all(topics, second, kinds)
    async with running_projection(settings, engine):
        await wait_for(lambda: _conflicts(engine, settings, len(kinds)), timeout=60, what="the conflicts")
        await wait_for(lambda: committed_to_end(settings), timeout=30, what="offsets committed")
    await assert_owned_by(engine, settings, first, second)


@pytest.mark.parametrize("kinds", KINDS[2:], ids=lambda k: "+".join(k))
@pytest.mark.parametrize("b_first", [False, True], ids=["a-first", "b-first"])
async def test_the_second_tenant_is_rejected_across_batches(
    settings: Settings, engine: AsyncEngine, kinds: tuple[str, ...], b_first: bool
) -> None:
    a, b = twins(settings)
    first, second = (b, a) if b_first else (a, b)
    async with running_projection(settings, engine):
        async with Topics(settings) as topics:
            await send_all(topics, first, kinds)
        await wait_for(lambda: committed_to_end(settings), timeout=30, what="the first tenant's records")
        before = (await event_rows(engine, [first["id"]]))[first["id"]]
        async with Topics(settings) as topics:
            await send_all(topics, second, kinds)
        await wait_for(lambda: _conflicts(engine, settings, len(kinds)), timeout=60, what="the conflicts")
        await wait_for(lambda: committed_to_end(settings), timeout=30, what="offsets committed")
    after = (await event_rows(engine, [first["id"]]))[first["id"]]
    assert after == before  # untouched: status, payload, tenant, updated_at
    await assert_owned_by(engine, settings, first, second)


async def test_a_dead_letter_of_another_tenant_does_not_touch_a_pending_row(
    settings: Settings, engine: AsyncEngine
) -> None:
    a, b = twins(settings)
    async with Topics(settings) as topics:
        await send_all(topics, a, ("pending",))
        await send_all(topics, b, ("dead_letter",))
    async with running_projection(settings, engine):
        await wait_for(lambda: _conflicts(engine, settings, 1), timeout=60, what="the conflict")
    row = (await event_rows(engine, [a["id"]]))[a["id"]]
    assert (row["status"], row["tenant_id"], row["error_message"]) == ("pending", a["tenantid"], None)


async def test_a_dead_letter_naming_no_tenant_is_kept_but_marks_no_owned_row(
    settings: Settings, engine: AsyncEngine
) -> None:
    a, _ = twins(settings)
    nameless = orjson.dumps({k: v for k, v in a.items() if k != "tenantid"})
    async with Topics(settings) as topics:
        await send_all(topics, a, ("pending",))
        await asyncio.sleep(0.01)
        await topics.dead_letter(nameless, [(r.DLQ_REASON, b"missing_field"), (r.DLQ_EVENT_ID, a["id"].encode())])
    async with running_projection(settings, engine):
        await wait_for(lambda: committed_to_end(settings), timeout=60, what="offsets committed")
    row = (await event_rows(engine, [a["id"]]))[a["id"]]
    assert (row["status"], row["tenant_id"], row["error_message"]) == ("pending", a["tenantid"], None)
    kept = await rows(engine, "SELECT raw FROM dead_letters WHERE event_id = :i", i=uuid.UUID(a["id"]))
    assert [k["raw"] for k in kept] == [nameless]
    assert await rejected(engine, settings) == {}


async def test_the_api_never_shows_one_tenant_the_others_event(settings: Settings, engine: AsyncEngine) -> None:
    a, b = twins(settings)
    async with Topics(settings) as topics:
        await send_all(topics, a, ("pending", "outcome"))
        await send_all(topics, b, ("pending", "outcome"))
    async with running_projection(settings, engine):
        await wait_for(lambda: _conflicts(engine, settings, 2), timeout=60, what="the conflicts")
    tokens = {a["tenantid"]: "token-a-0123456789abcdef", b["tenantid"]: "token-b-0123456789abcdef"}
    app = create_app(settings, ApiSettings(tokens=tokens), engine=engine, registry=CollectorRegistry())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    async with app.router.lifespan_context(app), client:
        owner = await client.get(f"/api/events/{a['id']}", headers={"Authorization": f"Bearer {tokens[a['tenantid']]}"})
        other = await client.get(f"/api/events/{a['id']}", headers={"Authorization": f"Bearer {tokens[b['tenantid']]}"})
        listed = await client.get("/api/events", headers={"Authorization": f"Bearer {tokens[b['tenantid']]}"})
    assert owner.status_code == 200, owner.text
    assert owner.json()["payload"]["data"]["campaign"] == "a-campaign"
    assert other.status_code == 404, other.text
    assert listed.status_code == 200 and a["id"] not in listed.text and "a-campaign" not in listed.text


async def _conflicts(engine: AsyncEngine, settings: Settings, count: int) -> bool:
    found = await rejected(engine, settings)
    return sum(1 for x in found.values() if x["reason"] == "id_conflict") >= count
