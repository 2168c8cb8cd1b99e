"""The HTTP API on a real Postgres and Kafka: status, filtered pages, replay, analytics, and tenant scope.

The events are real records on the test's source topics; their rows (and some facts) are written to
Postgres as the projection would, with statuses chosen per test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.api import ApiSettings, create_app
from salesflow.bootstrap import event_producer
from salesflow.db.schema import ai_action_facts, events, funnel_facts
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics
from salesflow.settings import Settings
from salesflow.testing.factories import T0, event_dict
from tests.conftest import SettingsFactory
from tests.integration.api_kit import replay_copies, running_relay

pytestmark = pytest.mark.integration

RUN = uuid4().hex[:6]
TENANTS = (f"acme-{RUN}", f"globex-{RUN}", f"initech-{RUN}")
TOKENS = {t: f"{t}-token-0123456789" for t in TENANTS}
ADMIN = f"admin-{RUN}-token-0123456789"
# Per tenant: a status for each event, in order of occurrence.
STATUSES = ["processed", "processed", "failed", "failed", "pending", "processed", "failed"]
TYPES = [EventType.LEAD_CREATED, EventType.MESSAGE_SENT]


@dataclass
class Seeded:
    settings: Settings
    client: httpx.AsyncClient
    rows: list[dict[str, Any]]
    registry: CollectorRegistry

    def of(self, tenant: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["tenant_id"] == tenant and all(r[k] == v for k, v in match.items())]

    async def get(self, path: str, tenant: str | None, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=auth(tenant))


def auth(tenant: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[tenant] if tenant else ADMIN}"}


async def seed(settings: Settings, engine: AsyncEngine, tenants: tuple[str, ...] = TENANTS) -> list[dict[str, Any]]:
    """Real records on the source topics, and their `events` rows; funnel and AI facts per tenant."""
    rows, facts, actions = [], [], []
    async with event_producer(settings) as producer:
        for t, tenant in enumerate(tenants):
            for n, status in enumerate(STATUSES):
                event_type = TYPES[n % 2]
                event = event_dict(event_type, tenant, offset_s=3600 * n + t, lead_id=f"lead-{n}")
                sent = await (await producer.send_event(event))
                occurred = T0 + timedelta(seconds=3600 * n + t)
                rows.append(
                    {
                        "id": UUID(event["id"]),
                        "type": event_type.value,
                        "tenant_id": tenant,
                        "lead_id": f"lead-{n}",
                        "status": status,
                        "created_at": occurred,
                        "processed_at": None if status == "pending" else occurred + timedelta(seconds=1),
                        "error_message": "analytics.lead_funnel: RuntimeError: bug" if status == "failed" else None,
                        "source_topic": sent.topic,
                        "source_partition": sent.partition,
                        "source_offset": sent.offset,
                        "payload": event,
                        "attempts": 1,
                    }
                )
                facts.append(
                    {
                        "event_id": UUID(event["id"]),
                        "tenant_id": tenant,
                        "lead_id": f"lead-{n}",
                        "occurred_at": occurred,
                        "stage": "created",
                    }
                )
            actions.append(
                {
                    "event_id": uuid4(),
                    "tenant_id": tenant,
                    "lead_id": "lead-0",
                    "occurred_at": T0,
                    "action_id": "a",
                    "action_type": "send_message",
                    "outcome": "succeeded",
                    "cost_usd": 0.5 * (t + 1),
                    "value_usd": 5.0 * (t + 1),
                }
            )
    async with engine.begin() as conn:
        await conn.execute(insert(events), rows)
        await conn.execute(insert(funnel_facts), facts)
        await conn.execute(insert(ai_action_facts), actions)
    return rows


@pytest.fixture(scope="module")
async def api(settings_factory: SettingsFactory, database_url: str) -> AsyncIterator[Seeded]:
    from salesflow.db.engine import create_engine

    settings = settings_factory()
    await create_topics(settings)
    engine = create_engine(database_url)
    rows = await seed(settings, engine)
    registry = CollectorRegistry()
    app = create_app(settings, ApiSettings(tokens=TOKENS, admin_tokens=[ADMIN]), engine=engine, registry=registry)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    async with app.router.lifespan_context(app), client, running_relay(settings):
        yield Seeded(settings, client, rows, registry)
    await engine.dispose()


async def test_an_event_by_id(api: Seeded) -> None:
    tenant = TENANTS[0]
    row = api.of(tenant, status="failed")[0]
    found = await api.get(f"/api/events/{row['id']}", tenant)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["id"], body["tenant_id"], body["status"]) == (str(row["id"]), tenant, "failed")
    assert body["type"] == row["type"]
    assert body["error_message"] == row["error_message"] and body["replay_count"] == 0
    assert body["source"] == {
        "topic": row["source_topic"],
        "partition": row["source_partition"],
        "offset": row["source_offset"],
    }
    assert body["payload"]["id"] == str(row["id"])


async def test_another_tenants_event_is_a_404_like_a_missing_one(api: Seeded) -> None:
    theirs = api.of(TENANTS[1])[0]["id"]
    other = await api.get(f"/api/events/{theirs}", TENANTS[0])
    missing = await api.get(f"/api/events/{uuid4()}", TENANTS[0])
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"].replace(str(theirs), "X") == missing.json()["detail"].split(" ")[0] + " X not found"
    assert (await api.get(f"/api/events/{theirs}", None)).status_code == 200  # the admin crosses tenants


async def test_without_a_valid_token_every_api_call_is_a_401(api: Seeded) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token-at-all"}, {"Authorization": "Basic eDp5"}):
        answer = await api.client.get("/api/events", headers=headers)
        assert answer.status_code == 401, headers
        # RFC 6750: a token that was sent and refused is an `invalid_token`; none sent, a bare challenge.
        challenge = 'Bearer error="invalid_token"' if "not-a-token" in str(headers) else "Bearer"
        assert answer.headers["www-authenticate"] == challenge and answer.json()["detail"]


async def test_pages_of_events_follow_the_cursor_newest_first(api: Seeded) -> None:
    tenant = TENANTS[2]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = (await api.get("/api/events", tenant, limit=3, **({"cursor": cursor} if cursor else {}))).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = sorted(api.of(tenant), key=lambda r: r["created_at"], reverse=True)
    assert [e["id"] for e in seen] == [str(r["id"]) for r in expected]


async def test_filters_by_status_type_and_time(api: Seeded) -> None:
    tenant = TENANTS[0]
    failed = (await api.get("/api/events", tenant, status="failed")).json()["items"]
    assert {e["id"] for e in failed} == {str(r["id"]) for r in api.of(tenant, status="failed")}
    messages = (await api.get("/api/events", tenant, type="message.sent")).json()["items"]
    assert {e["id"] for e in messages} == {str(r["id"]) for r in api.of(tenant, type="message.sent")}
    since, until = T0 + timedelta(hours=2), T0 + timedelta(hours=4)
    window = (await api.get("/api/events", tenant, since=since.isoformat(), until=until.isoformat())).json()["items"]
    assert {e["id"] for e in window} == {str(r["id"]) for r in api.of(tenant) if since <= r["created_at"] < until}
    naive = (await api.get("/api/events", tenant, since="2026-11-24T14:00:00", until="2026-11-24T16:00:00")).json()
    assert {e["id"] for e in naive["items"]} == {e["id"] for e in window}  # no zone: UTC


async def test_pending_backlog(api: Seeded) -> None:
    for tenant in TENANTS:
        page = (await api.get("/api/events/status/pending", tenant)).json()
        assert [e["id"] for e in page["items"]] == [str(r["id"]) for r in api.of(tenant, status="pending")]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"cursor": "garbage"}, 400, "invalid cursor"),
        ({"since": "2026-11-24T12:00:00Z", "until": "2026-11-24T11:00:00Z"}, 400, "`since` must be before `until`"),
        ({"since": "0001-01-01T00:00:00+14:00"}, 400, "out of range"),
        ({"limit": 501}, 422, "less than or equal to 500"),
        ({"status": "lost"}, 422, "Input should be"),
        ({"type": "lead.merged"}, 422, "Input should be"),
        ({"tenant_id": "a\x00b"}, 422, "should match pattern"),
    ],
)
async def test_bad_input_is_a_4xx_that_says_why(api: Seeded, params: dict[str, Any], status: int, says: str) -> None:
    answer = await api.get("/api/events", TENANTS[0], **params)
    assert answer.status_code == status, answer.text
    assert says in answer.text


async def test_replay_one_event_republishes_its_record_marked(api: Seeded) -> None:
    tenant = TENANTS[0]
    row = api.of(tenant, status="failed")[0]
    answer = await api.client.post(f"/api/events/{row['id']}/replay", headers=auth(tenant))
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued" and isinstance(body["audit_id"], int)  # in the outbox, with its audit row
    assert body["original"] == {
        "topic": row["source_topic"],
        "partition": row["source_partition"],
        "offset": row["source_offset"],
    }
    original = (row["source_topic"], row["source_partition"], row["source_offset"])
    (copy,) = await replay_copies(api.settings, original)  # the relay published it, to the same partition
    assert str(row["id"]).encode() in copy.value and copy.key == f"{tenant}:{row['lead_id']}".encode()
    theirs = api.of(TENANTS[1])[0]["id"]
    assert (await api.client.post(f"/api/events/{theirs}/replay", headers=auth(tenant))).status_code == 404


@pytest.mark.parametrize(
    ("topic", "partition", "offset"),
    [
        (None, 0, 10_000),  # beyond the log end
        # Before the reader checked the cluster's metadata, these two waited on the client's metadata
        # retries and hung the API under schemathesis.
        ("salesflow.deleted-topic.v1", 0, 0),
        (None, 999, 0),
    ],
    ids=["offset beyond the log", "deleted topic", "no such partition"],
)
async def test_replay_of_a_record_no_longer_in_kafka_is_a_409(
    api: Seeded, engine: AsyncEngine, topic: str | None, partition: int, offset: int
) -> None:
    tenant, ghost = TENANTS[0], uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            insert(events),
            [
                {
                    "id": ghost,
                    "type": "lead.created",
                    "tenant_id": tenant,
                    "status": "failed",
                    "created_at": datetime.now(UTC),
                    "source_topic": topic or api.settings.topics.source(EventType.LEAD_CREATED),
                    "source_partition": partition,
                    "source_offset": offset,
                }
            ],
        )
    answer = await api.client.post(f"/api/events/{ghost}/replay", headers=auth(tenant))
    assert answer.status_code == 409 and "source_gone" in answer.json()["detail"]


async def test_batch_replay_takes_the_callers_oldest_failed_events(api: Seeded) -> None:
    tenant = TENANTS[1]
    answer = await api.client.post(
        "/api/events/replay/batch",
        headers=auth(tenant),
        params={"event_type": "lead.created", "status": "failed", "limit": 1},
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    oldest = min(api.of(tenant, status="failed", type="lead.created"), key=lambda r: r["created_at"])
    assert body["selected"] == body["republished"] == 1 and body["results"][0]["event_id"] == str(oldest["id"])
    everything = (await api.client.post("/api/events/replay/batch", headers=auth(tenant), params={"limit": 50})).json()
    assert {r["event_id"] for r in everything["results"]} == {str(r["id"]) for r in api.of(tenant, status="failed")}
    nothing = await api.client.post("/api/events/replay/batch", headers=auth(tenant), params={"tenant_id": TENANTS[2]})
    assert nothing.json() == {"selected": 0, "republished": 0, "results": [], "audit_id": None}


async def test_analytics_per_tenant_and_day(api: Seeded) -> None:
    for t, tenant in enumerate(TENANTS):
        funnel = (await api.get("/api/analytics/funnel", tenant)).json()["items"]
        assert funnel == [
            {
                "tenant_id": tenant,
                "day": "2026-11-24",
                "stage": "created",
                "leads": len(STATUSES),
                "events": len(STATUSES),
            }
        ]
        roi = (await api.get("/api/analytics/ai-roi", tenant, since="2026-11-24", until="2026-11-24")).json()["items"]
        assert [(r["tenant_id"], r["cost_usd"], r["value_usd"], r["roi"]) for r in roi] == [
            (tenant, 0.5 * (t + 1), 5.0 * (t + 1), 10.0)
        ]
        assert (await api.get("/api/analytics/attribution", tenant)).json() == {"items": []}
    admin = (await api.get("/api/analytics/ai-roi", None, tenant_id=TENANTS[1])).json()["items"]
    assert [r["tenant_id"] for r in admin] == [TENANTS[1]]
    before = await api.get("/api/analytics/funnel", TENANTS[0], since="2026-11-25", until="2026-11-24")
    assert before.status_code == 400


async def test_no_read_crosses_tenants(api: Seeded) -> None:
    """Every GET operation of the published spec, called by one tenant with the others' ids and tenant
    names wherever a parameter takes them: no other tenant's id or name comes back."""
    spec = (await api.client.get("/openapi.json")).json()
    for caller in TENANTS:
        others = [t for t in TENANTS if t != caller]
        foreign = [str(r["id"]) for r in api.rows if r["tenant_id"] != caller]
        leaks = re.compile("|".join(map(re.escape, [*others, *foreign])))
        for path, operations in spec["paths"].items():
            if "get" not in operations:
                continue
            names = {p["name"] for p in operations["get"].get("parameters", [])}
            for target in [*others, None]:
                for event_id in foreign[:: len(STATUSES)]:
                    params = {"tenant_id": target} if target and "tenant_id" in names else {}
                    answer = await api.get(path.replace("{event_id}", event_id), caller, **params)
                    # /readyz answers 503 when Postgres is slower than its 2 s check (a loaded machine):
                    # not a read of anyone's data, and its body is checked for leaks like any other.
                    # /api/audit is an admin's: a tenant's token is refused it (403), whatever it asks.
                    allowed = {"/readyz": (200, 404, 503), "/api/audit": (403,)}.get(path, (200, 404))
                    assert answer.status_code in allowed, (
                        path,
                        answer.text,
                    )
                    # A 404 may echo the id the caller sent: that says nothing about the other tenant.
                    text = answer.text.replace(event_id, "<asked>")
                    assert not leaks.search(text), (caller, path, params, text[:300])


async def test_health_readiness_and_metrics(api: Seeded) -> None:
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    healthz_before = api.registry.get_sample_value("salesflow_api_requests_total", labels) or 0
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}
    metrics = (await api.client.get("/metrics")).text
    assert 'salesflow_api_requests_total{method="GET",route="/api/events/{event_id}",status="404"}' in metrics
    assert 'salesflow_api_replays_total{result="queued"}' in metrics
    assert not any(str(r["id"]) in metrics for r in api.rows)  # route templates, never ids
    assert api.registry.get_sample_value("salesflow_api_requests_total", labels) == healthz_before + 1
