"""Alembic environment of the outbox table: its own version table, so it never meets the service's."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from salesflow.db.engine import create_engine
from salesflow.outbox.schema import VERSION_TABLE

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
