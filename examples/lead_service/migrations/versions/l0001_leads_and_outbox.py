"""The leads table, and the outbox table in the same history (``create_outbox``).

Revision ID: l0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from salesflow.outbox import create_outbox, drop_outbox

revision = "l0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("campaign", sa.Text),
        sa.Column("owner_id", sa.Text),
        sa.Column("autopilot", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "email", name="leads_tenant_email"),
    )
    create_outbox(op)


def downgrade() -> None:
    drop_outbox(op)
    op.drop_table("leads")
