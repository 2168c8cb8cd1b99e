"""The tables the projection writes and the API reads (the migrations create them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from salesflow.domain.outputs import FACT_KINDS

metadata = MetaData()


def _updated_at() -> Column[object]:
    return Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now())


events = Table(
    "events",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("type", Text),
    Column("tenant_id", Text),
    Column("lead_id", Text),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),  # when the event occurred
    Column("processed_at", DateTime(timezone=True)),
    Column("error_message", Text),
    Column("source_topic", Text),
    Column("source_partition", Integer),
    Column("source_offset", BigInteger),
    Column("payload", JSONB),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("replay_count", Integer, nullable=False, server_default="0"),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _updated_at(),
    CheckConstraint("status IN ('pending', 'processed', 'failed', 'dead_lettered')", name="events_status_valid"),
    # The operators' questions: a tenant's latest events; failed events, newest first; a type's backlog.
    Index("ix_events_tenant_created", "tenant_id", text("created_at DESC")),
    Index("ix_events_status_created", "status", text("created_at DESC")),
    Index("ix_events_type_status", "type", "status"),
)


def _fact_table(name: str, *columns: Column[object], key: tuple[str, ...] = ("event_id",)) -> Table:
    return Table(
        name,
        metadata,
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("tenant_id", Text, nullable=False),
        Column("lead_id", Text, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        *columns,
        _updated_at(),
        PrimaryKeyConstraint(*key),
        Index(f"ix_{name}_tenant_occurred", "tenant_id", "occurred_at"),
    )


funnel_facts = _fact_table("funnel_facts", Column("stage", Text, nullable=False), key=("event_id", "stage"))

attribution_touches = _fact_table(
    "attribution_touches",
    Column("touch", Text, nullable=False),
    Column("source", Text),
    Column("campaign", Text),
    Column("channel", Text),
    Column("autopilot_action_id", Text),
)

ai_action_facts = _fact_table(
    "ai_action_facts",
    Column("action_id", Text, nullable=False),
    Column("action_type", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("model", Text),
    Column("cost_usd", Numeric(14, 6), nullable=False),
    Column("value_usd", Numeric(14, 6), nullable=False),
    Column("tokens", Integer),
)

message_facts = _fact_table(
    "message_facts",
    Column("message_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("latency_seconds", Float, nullable=False),
    Column("sequence_id", Text),
    Column("autopilot_action_id", Text),
)

sequence_step_facts = _fact_table(
    "sequence_step_facts",
    Column("sequence_id", Text, nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("step_count", Integer),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("completed", Boolean, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("event_id", UUID(as_uuid=True)),
    Column("reason", Text, nullable=False),
    Column("detail", Text),
    Column("record_key", LargeBinary),
    Column("raw", LargeBinary),
    Column("headers", JSONB),
    Column("original_timestamp", DateTime(timezone=True)),
    Column("dead_lettered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("redriven_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("topic", "partition", "offset"),
    Index("ix_dead_letters_reason", "reason", "dead_lettered_at"),
)

# Records the projection could not write (a value Postgres refuses, a malformed outcome, an event id
# owned by another tenant): kept with the reason, the error and the record's own bytes, so nothing is
# lost and nothing blocks the records after them. Keyed by the record's position: a re-read after a
# crash adds nothing. Headers are kept as [name, base64 value] pairs: jsonb cannot hold a NUL.
rejected_records = Table(
    "rejected_records",
    metadata,
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("event_id", UUID(as_uuid=True)),
    Column("tenant_id", Text),
    Column("record_key", LargeBinary),
    Column("raw", LargeBinary),
    Column("headers", JSONB),
    Column("record_timestamp", DateTime(timezone=True)),
    Column("rejected_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("topic", "partition", "offset"),
    Index("ix_rejected_records_reason", "reason", "rejected_at"),
    Index("ix_rejected_records_event", "event_id"),
)

# Fact kind (as the outcome record names it) -> its table, from the one list in ``domain.outputs``.
FACT_TABLES: dict[str, Table] = {kind: metadata.tables[model.table] for kind, model in FACT_KINDS.items()}
