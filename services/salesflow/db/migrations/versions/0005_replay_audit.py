"""replay_audit: one append-only row per replay the API accepted (who, which tenants, what, when), and
the outbox the replays leave through: written in one transaction with their audit row, published by
``salesflow outbox relay`` (its default database is this one). The outbox is part of this history,
as the outbox module's docs show for any service.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from salesflow.outbox.schema import add_partition, create_outbox, drop_outbox

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Append-only: a row, once committed, is never changed or removed through SQL (the table's owner could
# drop the trigger; a role that only runs the API cannot). TRUNCATE bypasses row triggers: refused too.
REFUSE = """
CREATE FUNCTION replay_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'replay_audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$
"""


def upgrade() -> None:
    op.create_table(
        "replay_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("caller_tenants", postgresql.ARRAY(sa.Text()), nullable=True),  # NULL: every tenant
        sa.Column("kind", sa.Text(), nullable=False),  # event, batch, dead_letter
        sa.Column("filter", postgresql.JSONB(), nullable=False),
        sa.Column("tenants", postgresql.ARRAY(sa.Text()), nullable=False),  # of the records replayed
        sa.Column("ids", postgresql.ARRAY(sa.Text()), nullable=False),  # event ids (dead letters: positions)
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('event', 'batch', 'dead_letter')", name="replay_audit_kind"),
    )
    op.create_index("replay_audit_tenants", "replay_audit", ["tenants"], postgresql_using="gin")
    op.execute(REFUSE)
    op.execute(
        "CREATE TRIGGER replay_audit_no_change BEFORE UPDATE OR DELETE ON replay_audit "
        "FOR EACH ROW EXECUTE FUNCTION replay_audit_append_only()"
    )
    op.execute(
        "CREATE TRIGGER replay_audit_no_truncate BEFORE TRUNCATE ON replay_audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION replay_audit_append_only()"
    )
    create_outbox(op)
    add_partition(op)  # a replay goes back to its original's partition


def downgrade() -> None:
    drop_outbox(op)
    op.drop_table("replay_audit")
    op.execute("DROP FUNCTION replay_audit_append_only()")
