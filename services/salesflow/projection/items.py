"""What the projection reads a record into (one ``Item`` per record), and the facts' table shapes.

``pending_reading``, ``outcome_reading`` and ``dead_letter_reading`` make these; ``batch`` and the
writer take them. A record that cannot be read becomes a ``Rejection`` with its reason: kept, never
raised, so it cannot stop the records after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, get_args
from uuid import UUID

import msgspec

from salesflow.domain.outputs import FACT_KINDS, fact_columns
from salesflow.domain.records import RecordIn

Row = dict[str, Any]


def _is_time(annotation: Any) -> bool:
    return annotation is datetime or datetime in get_args(annotation)


# Per fact kind: its table's columns (the struct's fields; its tag, ``kind``, is not one) and its time
# fields.
FACT_COLUMNS: dict[str, tuple[str, ...]] = {kind: fact_columns(model) for kind, model in FACT_KINDS.items()}
FACT_TIMES: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in msgspec.structs.fields(model) if _is_time(f.type)) for kind, model in FACT_KINDS.items()
}


class RejectReason(StrEnum):
    """Why the projection kept a record aside instead of writing it (``rejected_records.reason``)."""

    INVALID_VALUE = "invalid_value"  # Postgres or the driver refused a value of it
    MALFORMED_OUTCOME = "malformed_outcome"  # an outcome record that does not read as one
    MALFORMED_DEAD_LETTER = "malformed_dead_letter"  # a dead-letter record with unreadable headers
    ID_CONFLICT = "id_conflict"  # its event id belongs to another tenant


@dataclass(frozen=True)
class Rejection:
    """A record the projection keeps aside, with why."""

    record: RecordIn
    reason: RejectReason
    error: str
    event_id: UUID | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class PendingRow:
    """A source record that decodes as an event: its ``events`` row with status ``pending``."""

    record: RecordIn
    event_id: UUID
    tenant_id: str
    row: Row


@dataclass(frozen=True)
class OutcomeRows:
    """One outcome record as the rows it writes: its ``events`` row and its facts by kind."""

    record: RecordIn
    event_id: UUID
    tenant_id: str
    processed_at: datetime
    event: Row
    facts: dict[str, list[Row]]


@dataclass(frozen=True)
class DeadLetterRow:
    """A dead-letter record: its ``dead_letters`` row, and the tenant its original bytes name."""

    record: RecordIn
    event_id: UUID | None
    tenant_id: str | None
    row: Row


Item = PendingRow | OutcomeRows | DeadLetterRow | Rejection


def timestamp(value: str) -> datetime:
    """An ISO 8601 time with its zone; raises ``ValueError`` for one without (or not a time)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed
