"""The outbox table, on the service's own database: its SQLAlchemy ``Table`` and its DDL.

One row per event waiting for the relay, in ``id`` order (an identity column). A trigger notifies
``salesflow_outbox`` on every insert; Postgres delivers the notification when the inserting
transaction commits, so the relay wakes for committed rows only.

A service applies this with ``salesflow outbox migrate`` (its own Alembic version table,
``salesflow_outbox_version``), or from its own Alembic history::

    from salesflow.outbox.schema import create_outbox, drop_outbox

    def upgrade() -> None:
        create_outbox(op)

    def downgrade() -> None:
        drop_outbox(op)

and, in a later revision, ``add_partition(op)``: the optional ``partition`` column, which pins a row to
one partition (the API's replays go back to their original's partition; events of services leave it
NULL and are partitioned by key).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Identity, Integer, LargeBinary, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

TABLE = "salesflow_outbox"
CHANNEL = "salesflow_outbox"  # LISTEN/NOTIFY channel
VERSION_TABLE = "salesflow_outbox_version"


def outbox_table(metadata: MetaData) -> Table:
    """The outbox ``Table`` on ``metadata`` (a service's own, so its autogenerate sees it)."""
    return Table(TABLE, metadata, *_columns(), _partition_column())


def _columns() -> list[Column[Any]]:
    return [
        # The relay's order; rows of one lead get ids in commit order (see bus.py, the per-key lock).
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("topic", Text, nullable=False),
        Column("key", LargeBinary, nullable=False),
        Column("value", LargeBinary, nullable=False),  # the CloudEvent, JSON bytes
        Column("headers", JSONB, nullable=False, server_default="[]"),  # [[name, value], ...]
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def _partition_column() -> Column[Any]:
    return Column("partition", Integer, nullable=True)


NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TABLE}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One notification per statement; Postgres folds equal ones of a transaction into one, and
    -- delivers it at commit.
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END $$
"""
NOTIFY_TRIGGER = f"""
CREATE TRIGGER {TABLE}_notify AFTER INSERT ON {TABLE}
FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_notify()
"""


def create_outbox(op: Any) -> None:
    """Create the table and its notify trigger; call from an Alembic ``upgrade()`` with its ``op``."""
    op.create_table(TABLE, *_columns())
    op.execute(NOTIFY_FUNCTION)
    op.execute(NOTIFY_TRIGGER)


def drop_outbox(op: Any) -> None:
    """Drop what ``create_outbox`` made; call from an Alembic ``downgrade()``."""
    op.drop_table(TABLE)
    op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_notify()")


def add_partition(op: Any) -> None:
    """Add the ``partition`` column (revision o0002); call from an Alembic ``upgrade()``."""
    op.add_column(TABLE, _partition_column())


def drop_partition(op: Any) -> None:
    op.drop_column(TABLE, "partition")
