"""Where the integration/e2e tests find Kafka and Postgres.

``stack_endpoints()`` picks, in order:

1. ``SALESFLOW_KAFKA_BOOTSTRAP_SERVERS`` + ``SALESFLOW_DATABASE_URL`` from the environment;
2. throwaway testcontainers (Kafka in KRaft mode, Postgres) when a Docker engine answers;
3. the project's local dev stack (``salesflow.devstack``), started if needed and left running.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    """Connection strings for the tests."""

    kafka_bootstrap: str
    database_url: str  # always postgresql+asyncpg://...


def to_asyncpg_url(url: str) -> str:
    """Rewrite any ``postgres(ql)[+driver]://`` URL to the ``postgresql+asyncpg://`` form."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise ValueError(f"not a Postgres URL: {url!r}")
    return f"postgresql+asyncpg://{rest}"


def docker_available() -> bool:
    """True only when a Docker *engine* answers a ping (the CLI alone is not enough)."""
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def _containers() -> Iterator[Endpoints]:
    # Imported lazily: testcontainers is a dev extra and pulls in the docker SDK.
    try:
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # older testcontainers layout
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer().with_kraft()
    kafka.with_env("KAFKA_NUM_PARTITIONS", "6")
    pg = PostgresContainer(
        "postgres:16-alpine",
        username="salesflow",
        password="salesflow",
        dbname="salesflow",
        driver=None,
    )
    with contextlib.ExitStack() as cleanup:
        # Not `with kafka:` — its __enter__ would call start() with the default 30 s timeout.
        kafka.start(timeout=120)
        cleanup.callback(kafka.stop)
        pg.start()
        cleanup.callback(pg.stop)
        yield Endpoints(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            database_url=to_asyncpg_url(pg.get_connection_url()),
        )


@contextlib.contextmanager
def stack_endpoints() -> Iterator[Endpoints]:
    """Yield the Kafka bootstrap servers and the asyncpg database URL the tests should use."""
    bootstrap = os.environ.get("SALESFLOW_KAFKA_BOOTSTRAP_SERVERS")
    db_url = os.environ.get("SALESFLOW_DATABASE_URL")
    if bootstrap and db_url:
        yield Endpoints(kafka_bootstrap=bootstrap, database_url=to_asyncpg_url(db_url))
        return
    if docker_available():
        with _containers() as endpoints:
            yield endpoints
        return
    from salesflow.devstack import stack

    stack.up()  # idempotent; the stack is left running for the next run
    env = stack.env_exports()
    yield Endpoints(
        kafka_bootstrap=env["SALESFLOW_KAFKA_BOOTSTRAP_SERVERS"],
        database_url=env["SALESFLOW_DATABASE_URL"],
    )
