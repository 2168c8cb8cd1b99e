"""Replays and dead-letter redrives through the API with JWTs on a real Postgres and Kafka: a tenant's
token never reaches another tenant's events (or dead letters), every accepted replay leaves exactly one
audit row committed with its outbox rows, a dead letter is redriven once however often it is asked
for, and the audit trail is append-only and served to admins only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest
from aiokafka.structs import TopicPartition
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salesflow.api import ApiSettings, create_app, replays
from salesflow.api.jwt_settings import JwtSettings
from salesflow.db.schema import dead_letters
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics, plain_consumer
from salesflow.replay.deadletters import REDRIVE_HEADER
from salesflow.settings import Settings
from tests.conftest import SettingsFactory
from tests.idp import AUDIENCE, IdP, SigningKey, serve_idp
from tests.integration.api_kit import running_relay
from tests.integration.test_api import seed

pytestmark = pytest.mark.integration

RUN = uuid4().hex[:6]
A, B, C = f"stark-{RUN}", f"wayne-{RUN}", f"oscorp-{RUN}"
ADMIN_TOKEN = f"admin-{RUN}-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Api:
    settings: Settings
    engine: AsyncEngine
    http: httpx.AsyncClient
    idp: IdP
    rows: list[dict[str, Any]]

    def bearer(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.idp.token(**claims)}"}

    def failed(self, *tenants: str) -> set[str]:
        return {str(r["id"]) for r in self.rows if r["tenant_id"] in tenants and r["status"] == "failed"}

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def counts(self) -> tuple[int, int]:
        """Audit rows, and outbox rows of this module's topics."""
        audits = await self.scalar("SELECT count(*) FROM replay_audit")
        queued = await self.scalar("SELECT count(*) FROM salesflow_outbox WHERE topic LIKE :p", p=self.prefix)
        return int(audits), int(queued)

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix + "%"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdP]:
    with serve_idp(SigningKey.rsa()) as made:
        yield made


@pytest.fixture(scope="module")
async def api(settings_factory: SettingsFactory, database_url: str, idp: IdP) -> AsyncIterator[Api]:
    from salesflow.db.engine import create_engine

    settings = settings_factory()
    await create_topics(settings)
    engine = create_engine(database_url)
    rows = await seed(settings, engine, (A, B, C))
    api_settings = ApiSettings(
        auth=["jwt", "static"], admin_tokens=[ADMIN_TOKEN], jwt=JwtSettings(issuer=idp.issuer, audience=AUDIENCE)
    )
    app = create_app(settings, api_settings, engine=engine)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    async with app.router.lifespan_context(app), http:
        made = Api(settings, engine, http, idp, rows)
        yield made
        async with engine.begin() as conn:  # no relay of a later module should chase these topics
            await conn.execute(text("DELETE FROM salesflow_outbox WHERE topic LIKE :p"), {"p": made.prefix})
    await engine.dispose()


async def queued_tenants(api: Api, since_id: int) -> set[str]:
    keys = await api.engine.connect()
    try:
        found = await keys.execute(
            text("SELECT key FROM salesflow_outbox WHERE id > :since AND topic LIKE :p"),
            {"since": since_id, "p": api.prefix},
        )
        return {bytes(k).decode().split(":")[0] for (k,) in found}
    finally:
        await keys.close()


async def last_outbox_id(api: Api) -> int:
    return int(await api.scalar("SELECT coalesce(max(id), 0) FROM salesflow_outbox"))


async def test_a_token_of_tenant_a_never_replays_tenant_b(api: Api) -> None:
    since = await last_outbox_id(api)
    asked_for_b = await api.http.post(
        "/api/events/replay/batch", headers=api.bearer(tenant_id=A), params={"tenant_id": B}
    )
    assert asked_for_b.json() == {"selected": 0, "republished": 0, "results": [], "audit_id": None}
    b_event = next(iter(api.failed(B)))
    assert (await api.http.post(f"/api/events/{b_event}/replay", headers=api.bearer(tenant_id=A))).status_code == 404
    everything = await api.http.post(
        "/api/events/replay/batch", headers=api.bearer(tenant_id=A), params={"limit": 1000}
    )
    assert {r["event_id"] for r in everything.json()["results"]} == api.failed(A)
    both = await api.http.post("/api/events/replay/batch", headers=api.bearer(tenant_id=[A, C]), params={"limit": 1000})
    assert {r["event_id"] for r in both.json()["results"]} == api.failed(A, C)
    assert await queued_tenants(api, since) == {A, C}  # nothing of B went into the outbox


async def test_the_audit_row_and_the_outbox_rows_commit_together(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    before = await api.counts()

    async def fail_midway(conn: AsyncConnection, queued: Any) -> None:
        await conn.execute(text("SELECT 1 / 0"))  # a real Postgres error, after the audit row's insert

    monkeypatch.setattr(replays, "insert_rows", fail_midway)
    failed = await api.http.post("/api/events/replay/batch", headers=api.bearer(tenant_id=C))
    assert failed.status_code == 503, failed.text
    assert await api.counts() == before  # neither the audit row nor any record
    monkeypatch.undo()
    done = await api.http.post(
        "/api/events/replay/batch",
        headers={**api.bearer(tenant_id=C, sub="sre-7"), "X-Request-ID": "req-42"},
        params={"event_type": "lead.created", "limit": 5},
    )
    assert done.status_code == 202, done.text
    replayed = [r["event_id"] for r in done.json()["results"]]
    assert await api.counts() == (before[0] + 1, before[1] + len(replayed))
    row = (await api.http.get("/api/audit", headers=ADMIN)).json()["items"][0]
    assert row["id"] == done.json()["audit_id"]
    assert (row["subject"], row["issuer"], row["kind"], row["request_id"]) == (
        "sre-7",
        api.idp.issuer,
        "batch",
        "req-42",
    )
    assert row["tenants"] == [C] and row["caller_tenants"] == [C] and row["ids"] == replayed
    assert row["count"] == len(replayed) and row["filter"]["event_type"] == "lead.created"


async def test_a_refused_replay_leaves_no_audit_row(api: Api) -> None:
    before = await api.counts()
    reader = api.bearer(tenant_id=A, scope="events:read")
    assert (await api.http.post("/api/events/replay/batch", headers=reader)).status_code == 403
    assert (await api.http.post(f"/api/events/{uuid4()}/replay", headers=api.bearer(tenant_id=A))).status_code == 404
    assert await api.counts() == before


async def test_the_audit_trail_is_for_admins_and_append_only(api: Api) -> None:
    await api.http.post("/api/events/replay/batch", headers=api.bearer(tenant_id=B), params={"limit": 1})
    assert (await api.http.get("/api/audit", headers=api.bearer(tenant_id=B))).status_code == 403
    admin = api.bearer(scope="admin", tenant_id=None)
    page = (await api.http.get("/api/audit", headers=admin, params={"limit": 1, "tenant_id": B})).json()
    assert len(page["items"]) == 1 and page["items"][0]["tenants"] == [B] and page["next_before"]
    older = (await api.http.get("/api/audit", headers=admin, params={"before": page["next_before"]})).json()
    assert all(item["id"] < page["next_before"] for item in older["items"])
    for sql in ("UPDATE replay_audit SET subject = 'nobody'", "DELETE FROM replay_audit", "TRUNCATE replay_audit"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with api.engine.begin() as conn:
                await conn.execute(text(sql))


# Dead-letter redrive: the same audited path through the outbox.


async def add_dead_letters(api: Api, tenants: list[str | None], reason: str) -> list[str]:
    """Dead letters of records naming ``tenants`` (None: a record that is not JSON); their ids."""
    topic = api.settings.topics.source(EventType.LEAD_CREATED)
    base = 10_000_000 + int(uuid4().int % 1_000_000) * 10
    rows = [
        {
            "topic": topic,
            "partition": 0,
            "offset": base + n,
            "reason": reason,
            "detail": "test",
            "record_key": f"{tenant}:lead-{n}".encode(),
            "raw": orjson.dumps({"tenantid": tenant, "n": n}) if tenant else b"\xff not json",
            "headers": {"salesflow.dlq.reason": reason, "trace": f"t-{n}"},
        }
        for n, tenant in enumerate(tenants)
    ]
    async with api.engine.begin() as conn:
        await conn.execute(dead_letters.insert(), rows)
    return [f"{topic}:0:{r['offset']}" for r in rows]


async def redriven(api: Api, ids: list[str]) -> set[str]:
    sql = "SELECT topic || ':' || partition || ':' || \"offset\" FROM dead_letters WHERE redriven_at IS NOT NULL"
    async with api.engine.connect() as conn:
        return {row[0] for row in await conn.execute(text(sql))} & set(ids)


async def test_a_tenant_redrives_its_own_dead_letters_once(api: Api) -> None:
    reason = "invalid_field"
    mine = await add_dead_letters(api, [A, A], reason)
    theirs = await add_dead_letters(api, [B], reason)
    nobodys = await add_dead_letters(api, [None], reason)
    before = await api.counts()
    asked = {"id": [*mine, *theirs, *nobodys]}
    first = await api.http.post("/api/dead-letters/redrive", headers=api.bearer(tenant_id=A), params=asked)
    assert first.status_code == 202, first.text
    assert sorted(first.json()["queued"]) == sorted(mine) and first.json()["selected"] == 2
    assert await redriven(api, [*mine, *theirs, *nobodys]) == set(mine)
    assert await api.counts() == (before[0] + 1, before[1] + 2)
    again = await api.http.post("/api/dead-letters/redrive", headers=api.bearer(tenant_id=A), params=asked)
    assert again.json() == {"selected": 0, "queued": [], "audit_id": None}  # redriven already: not twice
    assert await api.counts() == (before[0] + 1, before[1] + 2)
    by_admin = await api.http.post("/api/dead-letters/redrive", headers=ADMIN, params={"id": nobodys})
    assert by_admin.json()["queued"] == nobodys  # a record naming no tenant is an admin's to redrive
    row = (await api.http.get("/api/audit", headers=ADMIN)).json()["items"][1]
    assert (row["kind"], row["ids"], row["tenants"]) == ("dead_letter", sorted(mine), [A])


async def test_bad_requests_and_missing_scopes_redrive_nothing(api: Api) -> None:
    ids = await add_dead_letters(api, [A], "invalid_field")
    before = await api.counts()
    reader = api.bearer(tenant_id=A, scope="events:read")
    assert (await api.http.post("/api/dead-letters/redrive", headers=reader, params={"id": ids})).status_code == 403
    for params in ({"id": "no-offset-here"}, {}, {"reason": "not_a_reason"}):
        answer = await api.http.post("/api/dead-letters/redrive", headers=api.bearer(tenant_id=A), params=params)
        assert answer.status_code in (400, 422), (params, answer.text)
    assert await api.counts() == before and await redriven(api, ids) == set()


async def test_a_failure_midway_leaves_no_mark_no_audit_row_and_no_record(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await add_dead_letters(api, [A], "invalid_field")
    before = await api.counts()

    async def fail_midway(conn: AsyncConnection, records: Any) -> None:
        await conn.execute(text("SELECT 1 / 0"))  # a real Postgres error, after the mark and the audit row

    monkeypatch.setattr("salesflow.api.dead_letter_redrive.insert_rows", fail_midway)
    failed = await api.http.post("/api/dead-letters/redrive", headers=api.bearer(tenant_id=A), params={"id": ids})
    assert failed.status_code == 503, failed.text
    assert await api.counts() == before and await redriven(api, ids) == set()
    assert replays.insert_rows is not fail_midway  # only the redrive's reference was replaced


async def test_the_relay_puts_the_original_bytes_back_on_its_partition(api: Api) -> None:
    [ident] = await add_dead_letters(api, [A], "unsupported_schema")
    topic, _, offset = ident.rsplit(":", 2)
    tp = TopicPartition(topic, 0)
    async with plain_consumer(api.settings) as consumer:
        start = (await consumer.end_offsets([tp]))[tp]
    done = await api.http.post("/api/dead-letters/redrive", headers=api.bearer(tenant_id=A), params={"id": [ident]})
    assert done.json()["queued"] == [ident]
    async with running_relay(api.settings), plain_consumer(api.settings) as consumer:
        consumer.assign([tp])
        consumer.seek(tp, start)
        found: list[Any] = []
        while not found:
            batch = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
            found = [r for r in batch if dict(r.headers).get(REDRIVE_HEADER) == ident.encode()]
    [record] = found
    headers = dict(record.headers)
    assert record.value == orjson.dumps({"tenantid": A, "n": 0}) and record.key == f"{A}:lead-0".encode()
    assert headers["trace"] == b"t-0" and "salesflow.dlq.reason" not in headers and int(offset) > 0
