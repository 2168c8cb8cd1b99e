"""Apply the outbox migration to a service's database (``salesflow outbox migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from salesflow.db import migrate

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """The pipeline's Alembic configuration, pointed at the outbox's own migrations."""
    config = migrate.alembic_config(database_url)
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Create (or bring up to date) the outbox table, recorded in ``salesflow_outbox_version``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Drop the outbox table (``base``) or go back to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)
