"""Alembic environment of the lead service (its default version table, ``alembic_version``)."""

from __future__ import annotations

from examples.lead_service.models import metadata
from salesflow.db.alembic_env import run_migrations

run_migrations(target_metadata=metadata)
