"""The outbox's optional partition column: a row that must go to one partition (an API replay).

Revision ID: o0002
Revises: o0001
"""

from __future__ import annotations

from alembic import op

from salesflow.outbox.schema import add_partition, drop_partition

revision = "o0002"
down_revision = "o0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_partition(op)


def downgrade() -> None:
    drop_partition(op)
