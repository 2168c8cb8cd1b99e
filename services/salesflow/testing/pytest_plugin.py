"""Pytest fixtures for handler tests with a real database: ``pytest_plugins =
["salesflow.testing.pytest_plugin"]`` in the top-level ``conftest.py``, or import the fixtures into one.

- ``handler_database_url``: a throwaway database for the session, created on the server of
  ``handler_database_server`` (``SALESFLOW_TEST_DATABASE_URL``, else ``SALESFLOW_DATABASE_URL``, else
  the default), migrated to head (so ``handler_effects`` is there), dropped at the end.
- ``handler_settings``: ``Settings`` pointing at it.
- ``handler_resources``: what handlers are injected with, on it; pass it to ``run_handlers``.
- ``handler_db``: a session on it, to read what a handler wrote.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.db import migrate
from salesflow.db.engine import create_engine
from salesflow.handlers.injection import Resources
from salesflow.settings import Settings


@pytest.fixture(scope="session")
def handler_database_server() -> str:
    """The server the throwaway database is made on; override this fixture to pick another."""
    return default_database_server()


def default_database_server() -> str:
    """``SALESFLOW_TEST_DATABASE_URL``, else the settings' database URL."""
    return os.environ.get("SALESFLOW_TEST_DATABASE_URL") or Settings().database_url


@pytest.fixture(scope="session")
def handler_database_url(handler_database_server: str) -> Iterator[str]:
    server = handler_database_server
    name = f"sf_kit_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin_sql(server, f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    asyncio.run(admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def handler_settings(handler_database_url: str) -> Settings:
    return Settings(database_url=handler_database_url, handler_database_url=None)


@pytest_asyncio.fixture
async def handler_resources(handler_settings: Settings) -> AsyncIterator[Resources]:
    resources = Resources(handler_settings)
    yield resources
    await resources.aclose()


@pytest_asyncio.fixture
async def handler_db(handler_database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(handler_database_url, pool_size=1)
    try:
        async with AsyncSession(engine) as session:
            yield session
    finally:
        await engine.dispose()


async def admin_sql(server: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on the server of ``server``."""
    engine = create_engine(server, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()
