"""Alembic environment of the lead service (its default version table, ``alembic_version``)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from examples.lead_service.models import metadata
from salesflow.db.engine import create_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_run_online())
