"""The one Alembic environment every migration tree runs (the pipeline's, the outbox's, a service's):
online over the async engine of the configured URL, or offline as SQL. Each tree's ``env.py`` only
says what ``context.configure`` gets (its metadata, its version table)."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from salesflow.db.engine import create_engine


def run_migrations(**configure: Any) -> None:
    """Run this tree's migrations; ``configure`` goes to ``context.configure`` (for example
    ``target_metadata=...`` or ``version_table=...``)."""
    url = context.config.get_main_option("sqlalchemy.url") or ""
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **configure)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(url, configure))


async def _run_online(url: str, configure: dict[str, Any]) -> None:
    def run(connection: Connection) -> None:
        context.configure(connection=connection, **configure)
        with context.begin_transaction():
            context.run_migrations()

    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(run)
    await engine.dispose()
