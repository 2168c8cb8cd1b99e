"""Shared fixtures. Kafka and Postgres come once per session from ``tests/infra.py``; each test gets
its own topic prefix and consumer groups (factories), and the session its own database.

The suites that start a worker run once per engine (``worker_engine``): ``SALESFLOW_TEST_ENGINES``
(comma-separated, default ``faust,batch``) says which.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.db import migrate
from salesflow.db.engine import create_engine
from salesflow.kafka_admin import create_topics
from salesflow.kafka_clients import librdkafka_options
from salesflow.settings import Settings
from tests.harness import Service
from tests.infra import Endpoints, stack_endpoints

SettingsFactory = Callable[..., Settings]

# Modules whose tests start a worker process: each runs against every engine under test.
ENGINE_SUITES = (
    "tests/integration/test_pipeline.py",
    "tests/integration/test_poison.py",
    "tests/integration/test_replay_",
    "tests/integration/test_dlq.py",
    "tests/integration/test_security.py",
    "tests/integration/test_engines.py",
    "tests/faults/",
)


def engines_under_test() -> list[str]:
    """The worker engines the engine suites run against (``SALESFLOW_TEST_ENGINES``)."""
    return [e.strip() for e in os.environ.get("SALESFLOW_TEST_ENGINES", "faust,batch").split(",") if e.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the engine suites by engine, per module, so a module's worker fixtures are built
    once per engine (and torn down before the next)."""
    path = metafunc.definition.nodeid.split("::")[0]
    if "worker_engine" in metafunc.fixturenames and any(path.startswith(s) for s in ENGINE_SUITES):
        metafunc.parametrize("worker_engine", engines_under_test(), scope="module")


@pytest.fixture(scope="module")
def worker_engine() -> str:
    """The engine of a worker started outside the engine suites: the settings' default."""
    return str(Settings.model_fields["worker_engine"].default)


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with stack_endpoints() as found:
        yield found


@pytest.fixture(scope="session")
def database_url(endpoints: Endpoints) -> Iterator[str]:
    """A fresh database for this test session, migrated to head, dropped at the end."""
    admin = make_url(endpoints.database_url)
    name = f"sf_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_sql(admin, f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    asyncio.run(_admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin_sql(url: Any, sql: str) -> None:
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def settings_factory(endpoints: Endpoints, database_url: str, worker_engine: str) -> Iterator[SettingsFactory]:
    """Settings isolated per test: a unique topic prefix and consumer groups, the session database,
    and the module's worker engine. The module's topics are deleted when it ends, so a long-lived
    local broker does not pile up partitions run after run (thousands of them exhaust its heap)."""
    made: list[Settings] = []

    def make(**overrides: Any) -> Settings:
        run = uuid.uuid4().hex[:8]
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": endpoints.kafka_bootstrap,
            "database_url": database_url,
            "topic_prefix": f"t{run}.salesflow.",
            "processor_group": f"processor-{run}",
            "projection_group": f"projection-{run}",
            "topic_partitions": 3,
            "worker_metrics_port": 0,
            "projection_metrics_port": 0,
            "worker_data_dir": f"/tmp/salesflow-test-{run}",
            "worker_engine": worker_engine,
        }
        made.append(Settings(**{**values, **overrides}))
        return made[-1]

    yield make
    delete_test_topics(made)


def delete_test_topics(made: list[Settings]) -> None:
    """Delete the topics of these settings' prefixes, on each cluster they name; best effort (a broker
    a test stopped, or one that is slow to answer, leaves them for the next run's stack)."""
    by_cluster = {s.kafka_bootstrap_servers: s for s in made}
    for settings in by_cluster.values():
        prefixes = tuple(
            {s.topic_prefix for s in made if s.kafka_bootstrap_servers == settings.kafka_bootstrap_servers}
        )
        try:
            admin = AdminClient(librdkafka_options(settings))
            names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefixes)]
            for future in admin.delete_topics(names, operation_timeout=30).values() if names else ():
                future.result(timeout=60)
        except Exception as exc:  # cleanup must not fail the tests it follows
            print(f"[cleanup] could not delete the test topics on {settings.kafka_bootstrap_servers}: {exc}")


@pytest.fixture
async def settings(settings_factory: SettingsFactory) -> Settings:
    """Settings for one test, with its topics created."""
    made = settings_factory()
    await create_topics(made)
    return made


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url)
    yield made
    await made.dispose()


@pytest.fixture(scope="session")
def service_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, Settings], Service]]:
    """Start ``salesflow worker`` / ``salesflow projection`` processes; all are stopped at the end."""
    started: list[Service] = []
    logs = tmp_path_factory.mktemp("service-logs")

    def start(command: str, settings: Settings) -> Service:
        service = Service(command, settings, logs / uuid.uuid4().hex[:6]).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
