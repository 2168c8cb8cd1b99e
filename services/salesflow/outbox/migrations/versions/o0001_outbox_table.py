"""The outbox table and its notify trigger.

Revision ID: o0001
Revises:
"""

from __future__ import annotations

from alembic import op

from salesflow.outbox.schema import create_outbox, drop_outbox

revision = "o0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox(op)


def downgrade() -> None:
    drop_outbox(op)
