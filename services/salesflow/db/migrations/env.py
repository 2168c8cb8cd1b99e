"""Alembic environment of the pipeline's tables (``salesflow.db.alembic_env`` runs it)."""

from __future__ import annotations

from salesflow.db.alembic_env import run_migrations
from salesflow.db.schema import metadata

run_migrations(target_metadata=metadata)
