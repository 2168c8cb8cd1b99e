"""handler_effects: one idempotency record per (handler, tenant, event) for handlers with side effects

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written in the same transaction as a handler's own writes (salesflow/handlers/effects.py).
    op.create_table(
        "handler_effects",
        sa.Column("handler", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("runs", sa.Integer(), server_default="1", nullable=False),
        sa.Column("first_applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("handler", "tenant_id", "event_id"),
    )


def downgrade() -> None:
    op.drop_table("handler_effects")
