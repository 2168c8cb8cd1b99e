"""The nemesis's own stack and services: a DedicatedStack whose broker also listens behind Toxiproxy,
two databases on its Postgres (the pipeline's, and the lead service's with the outbox), and five
services under the fault suite's restarting Supervisor.

Who goes through the proxies (so a network fault hits them and nobody else): worker-1, the projection
and relay-1 reach the broker through the ``kafka`` proxy; the projection and relay-1 reach Postgres
through the ``postgres`` proxy. worker-0, relay-0, the workload and the checker connect directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from salesflow.db import migrate
from salesflow.devstack.stack import stack_dir
from salesflow.devstack.toxiproxy import Toxiproxy, ensure_toxiproxy
from salesflow.outbox import migrate as outbox_migrate
from salesflow.settings import Settings
from tests.faults.conftest import Supervisor
from tests.faults.stack import DedicatedStack, free_port
from tests.harness import ROOT, Service, settings_env


class RigService(Service):
    """A ``salesflow`` command of several words (``outbox relay``) with extra environment."""

    def __init__(self, command: str, settings: Settings, log_dir: Path, env: dict[str, str]) -> None:
        super().__init__(command, settings, log_dir)
        self.env = env
        self.log_path = log_dir / f"{command.replace(' ', '-')}.log"

    def start(self) -> RigService:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "salesflow.cli.main", *self.command.split()],
            env={**settings_env(self.settings), **self.env},
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        return self


@dataclass
class Rig:
    state_dir: Path
    stack: DedicatedStack
    proxy: Toxiproxy | None  # None: no Go to build Toxiproxy with, so no network faults
    kafka_proxy_port: int
    postgres_proxy_port: int
    supervisor: Supervisor
    services: dict[str, RigService] = field(default_factory=dict)
    settings: Settings | None = None
    service_url: str = ""  # the lead service's database (the outbox), direct

    @classmethod
    def build(cls, state_dir: Path, with_proxy: bool = True) -> Rig:
        stack = DedicatedStack.under(state_dir)
        kafka_proxy, postgres_proxy = free_port(), free_port()
        binary = ensure_toxiproxy(stack_dir()) if with_proxy else None
        stack.kafka = dataclasses.replace(stack.kafka, proxied=(free_port(), kafka_proxy))
        proxy = Toxiproxy(binary, free_port(), state_dir / "toxiproxy.log") if binary else None
        return cls(state_dir, stack, proxy, kafka_proxy, postgres_proxy, Supervisor(state_dir / "logs"))

    async def start(self, settings_for: dict[str, Any]) -> Settings:
        """Start the stack and the proxies, make both databases and the topics; no services yet."""
        await asyncio.to_thread(self.stack.start)
        if self.proxy is not None:
            await asyncio.to_thread(self.proxy.start)
            assert self.stack.kafka.proxied is not None
            self.proxy.proxy("kafka", self.kafka_proxy_port, self.stack.kafka.proxied[0])
            self.proxy.proxy("postgres", self.postgres_proxy_port, self.stack.postgres.port)
        admin = make_url(self.stack.database_url)
        conn = await asyncpg.connect(
            host=admin.host, port=admin.port, user=admin.username, password=admin.password, database=admin.database
        )
        try:
            await conn.execute('CREATE DATABASE "pipeline"')
            await conn.execute('CREATE DATABASE "leads"')
        finally:
            await conn.close()
        url = admin.set(database="pipeline").render_as_string(hide_password=False)
        self.service_url = admin.set(database="leads").render_as_string(hide_password=False)
        await asyncio.to_thread(migrate.upgrade, url)
        await asyncio.to_thread(outbox_migrate.upgrade, self.service_url)
        self.settings = Settings(kafka_bootstrap_servers=self.stack.bootstrap, database_url=url, **settings_for)
        return self.settings

    def _proxied_port(self, port: int, proxy_port: int) -> str:
        return str(proxy_port if self.proxy is not None else port)

    def start_services(self) -> None:
        assert self.settings is not None
        direct, proxied = self.settings, self.settings
        if self.proxy is not None:
            bootstrap = f"127.0.0.1:{self.kafka_proxy_port}"
            pipeline_url = make_url(self.settings.database_url).set(port=self.postgres_proxy_port)
            proxied = self.settings.model_copy(
                update={
                    "kafka_bootstrap_servers": bootstrap,
                    "database_url": pipeline_url.render_as_string(hide_password=False),
                }
            )
        service_url_proxied = make_url(self.service_url)
        if self.proxy is not None:
            service_url_proxied = service_url_proxied.set(port=self.postgres_proxy_port)
        relay_env = {"SALESFLOW_OUTBOX_METRICS_PORT": "0"}
        plan = {
            "worker-0": ("worker", direct, {}),
            "worker-1": ("worker", proxied, {}),
            "projection": ("projection", proxied, {}),
            "relay-0": ("outbox relay", direct, {**relay_env, "SALESFLOW_OUTBOX_DATABASE_URL": self.service_url}),
            "relay-1": (
                "outbox relay",
                proxied,
                {
                    **relay_env,
                    "SALESFLOW_OUTBOX_DATABASE_URL": service_url_proxied.render_as_string(hide_password=False),
                },
            ),
        }
        for name, (command, settings, env) in plan.items():
            service = RigService(command, settings, self.state_dir / "logs" / name, env)
            self.services[name] = service.start()
            self.supervisor.adopt(service)

    async def close(self) -> None:
        await self.supervisor.close()
        if self.proxy is not None:
            self.proxy.stop()
        await asyncio.to_thread(self.stack.stop)
