"""rejected records: what the projection could not write, kept with its reason and bytes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejected_records",
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=True),
        sa.Column("tenant_id", sa.Text(), nullable=True),
        sa.Column("record_key", sa.LargeBinary(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("record_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", "offset"),
    )
    op.create_index("ix_rejected_records_reason", "rejected_records", ["reason", "rejected_at"], unique=False)
    op.create_index("ix_rejected_records_event", "rejected_records", ["event_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rejected_records_event", table_name="rejected_records")
    op.drop_index("ix_rejected_records_reason", table_name="rejected_records")
    op.drop_table("rejected_records")
