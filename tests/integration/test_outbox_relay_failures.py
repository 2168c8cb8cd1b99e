"""The relay under the failure policy, on the real Postgres and Kafka: a permanent error (the table not
migrated, a privilege revoked, the metrics port taken) ends it with one clear line and exit status 1;
a topic the cluster does not have holds back its own rows only, named in the log and counted, and
they go out once the topic exists. Each step waits for a state that persists (an exit, a row count,
a log line), never for a time."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.request
import uuid

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.producer.typed_events import LeadCreatedEvent, ProducerEvent
from salesflow.settings import Settings
from tests.conftest import _admin_sql
from tests.harness import wait_for
from tests.infra import Endpoints
from tests.integration.test_outbox_kit import Relay, Relays, commit_events, outbox_rows, received

pytestmark = pytest.mark.integration

FAILED = 1  # bootstrap.RELAY_EXIT_FAILED


async def exited(relay: Relay, timeout: float = 60) -> int:
    """The relay's exit status, once it has ended by itself."""
    assert relay.process is not None

    async def ended() -> bool:
        return relay.process is not None and relay.process.poll() is not None

    await wait_for(ended, timeout=timeout, every=0.1, what="the relay to exit")
    return relay.process.returncode


def assert_one_clear_line(relay: Relay, *expected: str) -> str:
    log = relay.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log
    lines = [line for line in log.splitlines() if "ERROR" in line]
    assert len(lines) == 1, log
    assert all(text in lines[0] for text in expected), lines[0]
    return lines[0]


def leads(tenant: str, n: int) -> list[ProducerEvent]:
    return [LeadCreatedEvent(tenant_id=tenant, lead_id=f"lead-{k}", source="api") for k in range(n)]


async def test_a_database_without_the_outbox_table_stops_the_relay_with_one_line(
    settings: Settings, endpoints: Endpoints, relays: Relays
) -> None:
    admin = make_url(endpoints.database_url)
    name = f"sf_outbox_bare_{uuid.uuid4().hex[:8]}"
    await _admin_sql(admin, f'CREATE DATABASE "{name}"')  # no `salesflow outbox migrate`
    try:
        relay = relays.start(settings, admin.set(database=name).render_as_string(hide_password=False))
        assert await exited(relay) == FAILED
        assert_one_clear_line(relay, "UndefinedTableError", "salesflow outbox migrate", name)
    finally:
        await _admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_role_without_delete_stops_the_relay_with_one_line(
    settings: Settings, service: tuple[str, AsyncEngine], endpoints: Endpoints, relays: Relays
) -> None:
    url, engine = service
    role = f"sf_relay_{uuid.uuid4().hex[:8]}"
    database = make_url(url).database
    admin = make_url(endpoints.database_url)
    await _admin_sql(admin, f"CREATE ROLE {role} LOGIN PASSWORD 'relay'")
    try:
        await _admin_sql(make_url(url), f"GRANT SELECT ON salesflow_outbox TO {role}")  # no DELETE
        await commit_events(engine, settings, leads(f"priv-{uuid.uuid4().hex[:6]}", 3))
        relay = relays.start(settings, make_url(url).set(username=role, password="relay").render_as_string(False))
        assert await exited(relay) == FAILED
        assert_one_clear_line(relay, "InsufficientPrivilegeError", "grant", "DELETE", database or "")
        assert await outbox_rows(url) == 3  # published at least once, kept: sent again once it may delete
    finally:
        await _admin_sql(make_url(url), f"DROP OWNED BY {role}")
        await _admin_sql(admin, f"DROP ROLE IF EXISTS {role}")


async def test_a_metrics_port_in_use_stops_the_relay_with_one_line(
    settings: Settings, service: tuple[str, AsyncEngine], relays: Relays
) -> None:
    url, _ = service
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        relay = relays.start(settings, url, metrics_port=port)
        assert await exited(relay) == FAILED
    assert_one_clear_line(relay, f"metrics port {port} is in use", "SALESFLOW_OUTBOX_METRICS_PORT")


async def test_rows_of_an_unknown_topic_are_held_named_and_counted_and_hold_no_other_topic_back(
    settings: Settings, service: tuple[str, AsyncEngine], relays: Relays
) -> None:
    url, engine = service
    missing = f"{settings.topic_prefix}missing-{uuid.uuid4().hex[:6]}.v1"  # auto-create is off (devstack)
    tenant = f"held-{uuid.uuid4().hex[:6]}"
    await insert_rows(url, missing, 4)  # first in id order: the rows behind them must not wait
    events = leads(tenant, 5)
    await commit_events(engine, settings, events)
    relay = relays.start(settings, url, unknown_topic_recheck_seconds=1)

    found = await received(settings, expected=len(events))
    assert sorted(r.event["id"] for r in found) == sorted(str(e.event_id) for e in events)
    await relay.wait_for_log(f"topic {missing} does not exist on the cluster; its 4 rows stay")
    await wait_for(lambda: held(relay, missing), every=0.2, what="the held rows' gauge")
    assert await metric(relay, f'salesflow_outbox_held_rows{{topic="{missing}"}}') == 4
    assert (await metric(relay, 'salesflow_outbox_relay_errors_total{stage="unknown_topic"}') or 0) >= 1
    assert await outbox_rows(url) == 4 and relay.running

    create_topic(settings, missing)  # the held rows go out at the next look, no restart
    await wait_for(lambda: drained(url), timeout=120, every=0.2, what="the held rows to be published")
    assert await metric(relay, f'salesflow_outbox_held_rows{{topic="{missing}"}}') == 0


async def insert_rows(url: str, topic: str, n: int) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.executemany(
            "INSERT INTO salesflow_outbox (topic, key, value) VALUES ($1, $2, $3)",
            [(topic, f"k{k}".encode(), b'{"id": "%d"}' % k) for k in range(n)],
        )
    finally:
        await conn.close()


async def drained(url: str) -> bool:
    return await outbox_rows(url) == 0


async def held(relay: Relay, topic: str) -> bool:
    return await metric(relay, f'salesflow_outbox_held_rows{{topic="{topic}"}}') == 4


async def metric(relay: Relay, sample: str) -> float | None:
    """One sample of the relay's /metrics (its port, 0 in the tests, is in its start line)."""
    port = re.search(r"metrics on port (\d+)", relay.log_path.read_text(errors="replace"))
    assert port is not None
    url = f"http://127.0.0.1:{port.group(1)}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def create_topic(settings: Settings, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(timeout=30)
