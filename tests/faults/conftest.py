"""Fixtures of the fault suite: its own broker and database, services under a restarting supervisor."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.db import migrate
from salesflow.db.engine import create_engine
from salesflow.kafka_admin import create_topics
from salesflow.settings import Settings
from tests.conftest import _admin_sql
from tests.faults.stack import DedicatedStack
from tests.harness import Service


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[DedicatedStack]:
    # Not under pytest's tmp dir: that is private to root, and Postgres runs as its own OS user.
    state_dir = Path(tempfile.mkdtemp(prefix="salesflow-faults-"))
    state_dir.chmod(0o755)
    stack = DedicatedStack.under(state_dir)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
async def fault_settings(fault_stack: DedicatedStack, worker_engine: str) -> Callable[..., Any]:
    """A coroutine factory: settings on the fault stack with fresh topics and a fresh database, for the
    engine under test (``worker_engine``, parametrized in ``tests/conftest.py``)."""

    async def make(**overrides: Any) -> Settings:
        run = uuid.uuid4().hex[:8]
        admin = make_url(fault_stack.database_url)
        await _admin_sql(admin, f'CREATE DATABASE "f_{run}"')
        url = admin.set(database=f"f_{run}").render_as_string(hide_password=False)
        await asyncio.to_thread(migrate.upgrade, url)
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": fault_stack.bootstrap,
            "database_url": url,
            "topic_prefix": f"f{run}.",
            "processor_group": f"processor-{run}",
            "projection_group": f"projection-{run}",
            "topic_partitions": 6,
            "worker_metrics_port": 0,
            "projection_metrics_port": 0,
            "worker_data_dir": f"/tmp/salesflow-faults-{run}",
            "worker_engine": worker_engine,
        }
        settings = Settings(**{**values, **overrides})
        await create_topics(settings)
        return settings

    return make


@pytest.fixture
async def fault_engine_for() -> AsyncIterator[Callable[[Settings], AsyncEngine]]:
    engines: list[AsyncEngine] = []

    def make(settings: Settings) -> AsyncEngine:
        engines.append(create_engine(settings.database_url))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


class Supervisor:
    """Restarts services that exit, like a process manager or Kubernetes would; counts restarts."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: list[Service] = []
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, command: str, settings: Settings) -> Service:
        return self.adopt(Service(command, settings, self.log_dir / uuid.uuid4().hex[:6]).start())

    def adopt(self, service: Service) -> Service:
        """Watch a service started elsewhere (the nemesis's, with their own command line and env)."""
        self.services.append(service)
        if self._task is None:
            self._task = asyncio.create_task(self._watch())
        return service

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for service in self.services:
                if service.process is not None and service.process.poll() is not None and not service.retired:
                    self.restarts += 1
                    service.start()

    def retire(self, service: Service) -> None:
        """Stop watching a service that is meant to go away, and SIGKILL it."""
        service.retired = True
        service.kill()

    def retire_gracefully(self, service: Service) -> None:
        """Stop watching a service that is meant to go away, and SIGTERM it (waits for it to exit)."""
        service.retired = True
        service.stop(timeout=60)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        for service in self.services:
            service.retired = True
            service.stop()


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    made = Supervisor(tmp_path)
    yield made
    await made.close()
