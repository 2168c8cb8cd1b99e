"""Where the benchmark runs: the local stack, a database and topics of its own, and what it runs on.

Every run gets its own database (dropped at the end) and its own topic prefixes and consumer groups,
so it never touches the data of a demo or of a test run that shares the stack.
"""

from __future__ import annotations

import asyncio
import os
import platform
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from salesflow.db import migrate
from salesflow.kafka_admin import create_topics
from salesflow.settings import Settings

LIBRARIES = ("faust-streaming", "aiokafka", "sqlalchemy", "asyncpg", "pydantic", "orjson", "prometheus-client")


def endpoints() -> tuple[str, str]:
    """Kafka bootstrap servers and the asyncpg database URL: from the environment, else the dev stack."""
    bootstrap = os.environ.get("SALESFLOW_KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("SALESFLOW_DATABASE_URL")
    if bootstrap and database:
        return bootstrap, database
    from salesflow.devstack import stack

    stack.up()  # idempotent: starts the local stack on a fresh machine, leaves a running one alone
    env = stack.env_exports()
    return env["SALESFLOW_KAFKA_BOOTSTRAP_SERVERS"], env["SALESFLOW_DATABASE_URL"]


@dataclass
class BenchStack:
    """The run's database and a factory of isolated settings (one topic prefix per use)."""

    bootstrap: str
    admin_url: URL
    run: str
    database_url: str = ""

    @classmethod
    def open(cls) -> BenchStack:
        bootstrap, database = endpoints()
        return cls(bootstrap=bootstrap, admin_url=make_url(database), run=uuid.uuid4().hex[:8])

    async def create_database(self) -> None:
        name = f"sf_bench_{self.run}"
        await admin_sql(self.admin_url, f'CREATE DATABASE "{name}"')
        self.database_url = self.admin_url.set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(migrate.upgrade, self.database_url)  # alembic runs a loop of its own

    async def drop_database(self) -> None:
        if self.database_url:
            await admin_sql(self.admin_url, f'DROP DATABASE IF EXISTS "sf_bench_{self.run}" WITH (FORCE)')

    async def settings(self, use: str, *, partitions: int = 6, **overrides: Any) -> Settings:
        """Settings with a topic prefix and groups of their own; the topics are created."""
        tag = f"{self.run}{use}{uuid.uuid4().hex[:4]}"
        made = Settings(
            **{
                "kafka_bootstrap_servers": self.bootstrap,
                "database_url": self.database_url,
                "topic_prefix": f"bench{tag}.salesflow.",
                "processor_group": f"bench-processor-{tag}",
                "projection_group": f"bench-projection-{tag}",
                "topic_partitions": partitions,
                "worker_metrics_port": 0,
                "projection_metrics_port": 0,
                "worker_data_dir": f"/tmp/salesflow-bench-{tag}",
                **overrides,
            }
        )
        await create_topics(made)
        return made

    async def connect(self) -> asyncpg.Connection:
        return await connect(make_url(self.database_url))


async def connect(url: URL) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )


async def admin_sql(url: URL, sql: str) -> None:
    conn = await connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def environment(stack: BenchStack) -> dict[str, Any]:
    """The machine and the versions the figures were measured with."""
    from salesflow.devstack.kafka import kafka_version

    conn = await stack.connect()
    try:
        postgres = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return {
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kafka": kafka_version(),
        "postgres": postgres,
        "libraries": {name: metadata.version(name) for name in LIBRARIES},
    }
