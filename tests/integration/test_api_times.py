"""Issue 11, defect 4: every time the API returns is RFC 3339 with its offset, read from a real Postgres.

Rows are written as the projection writes them (times with various offsets), plus one written before
the contract bounded times: `0001-01-01T00:00:00Z` went through asyncpg as `-infinity`, which asyncpg
reads back as a naive `datetime.min`. The contract now refuses such a time (tests/unit/test_limits.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.api import ApiSettings, create_app
from salesflow.db.engine import create_engine
from salesflow.db.schema import events
from salesflow.domain.decoding import validate_envelope
from salesflow.domain.events import EventType
from salesflow.errors import DeadLetterReason, InvalidEvent
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.integration

TENANT = f"times-{uuid4().hex[:6]}"
TOKEN = f"{TENANT}-token-0123456789"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
TIME_FIELDS = ("created_at", "processed_at", "received_at", "updated_at")
EAST = timezone(timedelta(hours=14))
WEST = timezone(timedelta(hours=-11, minutes=-30))


def row(event_id: UUID, created_at: datetime | None, processed_at: datetime | None) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "lead.created",
        "tenant_id": TENANT,
        "lead_id": "lead-1",
        "status": "processed",
        "created_at": created_at,
        "processed_at": processed_at,
        "attempts": 1,
    }


@dataclass
class Api:
    client: httpx.AsyncClient
    engine: AsyncEngine

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers={"Authorization": f"Bearer {TOKEN}"})

    async def write(self, *rows: dict[str, Any], sql: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(events), list(rows))
            if sql:
                await conn.execute(text(sql), {"id": rows[0]["id"]})


@pytest.fixture(scope="module")
async def api(settings_factory: SettingsFactory, database_url: str) -> AsyncIterator[Api]:
    engine = create_engine(database_url)
    app = create_app(
        settings_factory(), ApiSettings(tokens={TENANT: TOKEN}), engine=engine, registry=CollectorRegistry()
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    async with app.router.lifespan_context(app), client:
        yield Api(client, engine)
    await engine.dispose()


async def test_times_in_any_offset_come_back_in_utc_with_their_offset(api: Api) -> None:
    cases = {
        uuid4(): (datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=EAST), datetime(2026, 11, 24, 1, tzinfo=WEST)),
        uuid4(): (datetime(1970, 1, 1, tzinfo=UTC), None),  # the contract's first instant, not yet processed
        uuid4(): (datetime(9999, 12, 31, 13, 59, 59, 999999, tzinfo=EAST), datetime(9999, 12, 30, tzinfo=UTC)),
    }
    await api.write(*(row(i, c, p) for i, (c, p) in cases.items()))
    for event_id, (created, processed) in cases.items():
        body = (await api.get(f"/api/events/{event_id}")).json()
        for name in TIME_FIELDS:
            if body[name] is not None:
                assert RFC3339.match(body[name]), (name, body[name])
                assert body[name].endswith("Z"), (name, body[name])
        assert datetime.fromisoformat(body["created_at"]) == created
        if processed is None:
            assert body["processed_at"] is None
        else:
            assert datetime.fromisoformat(body["processed_at"]) == processed


async def test_a_time_stored_as_infinity_before_the_limits_is_null_not_a_zoneless_time(
    api: Api,
) -> None:
    legacy = uuid4()
    await api.write(
        row(legacy, None, datetime(2026, 11, 24, tzinfo=UTC)),
        sql="UPDATE events SET created_at = '-infinity', processed_at = 'infinity' WHERE id = :id",
    )
    single = await api.get(f"/api/events/{legacy}")
    assert single.status_code == 200, single.text
    assert (single.json()["created_at"], single.json()["processed_at"]) == (None, None)
    listed = await api.get("/api/events", limit=500)
    assert listed.status_code == 200, listed.text
    for item in listed.json()["items"]:
        for name in TIME_FIELDS:
            assert item[name] is None or RFC3339.match(item[name]), (item["id"], name, item[name])


def test_the_time_that_became_infinity_is_refused_by_the_contract_now() -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate_envelope({**event_dict(EventType.LEAD_CREATED), "time": "0001-01-01T00:00:00Z"})
    assert caught.value.reason == DeadLetterReason.INVALID_FIELD and caught.value.detail.startswith("time: ")
