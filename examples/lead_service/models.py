"""The lead service's own tables: ``leads``, and the outbox table on the same ``MetaData``."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, Table, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import UUID

from salesflow.outbox import outbox_table

metadata = MetaData()

leads = Table(
    "leads",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("campaign", Text),
    Column("owner_id", Text),
    Column("autopilot", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "email", name="leads_tenant_email"),
)

# The outbox is part of this service's schema: its own Alembic history creates it (migrations/).
outbox = outbox_table(metadata)
