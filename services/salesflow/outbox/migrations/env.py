"""Alembic environment of the outbox table: its own version table, so it never meets the service's."""

from __future__ import annotations

from salesflow.db.alembic_env import run_migrations
from salesflow.outbox.schema import VERSION_TABLE

run_migrations(version_table=VERSION_TABLE)
