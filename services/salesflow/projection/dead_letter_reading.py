"""A dead-letter record read as its ``dead_letters`` row (pure: no I/O), and the ``events`` row that
marks its event dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import orjson

from salesflow.domain import records as r
from salesflow.domain.outcome import EventStatus
from salesflow.domain.records import RecordIn, text_header
from salesflow.projection.items import DeadLetterRow, Rejection, RejectReason, Row


def dead_letter_row(record: RecordIn) -> DeadLetterRow | Rejection:
    """A dead-letter record's ``dead_letters`` row, or its rejection when its headers do not read."""
    try:
        partition = int(text_header(record, r.DLQ_ORIGINAL_PARTITION) or record.partition)
        offset = int(text_header(record, r.DLQ_ORIGINAL_OFFSET) or record.offset)
    except ValueError as exc:
        return Rejection(record, RejectReason.MALFORMED_DEAD_LETTER, f"ValueError: {exc}")
    event_id = _uuid_or_none(text_header(record, r.DLQ_EVENT_ID))
    row = {
        "topic": text_header(record, r.DLQ_ORIGINAL_TOPIC) or record.topic,
        "partition": partition,
        "offset": offset,
        "event_id": event_id,
        "reason": text_header(record, r.DLQ_REASON) or "unknown",
        "detail": text_header(record, r.DLQ_DETAIL),
        "record_key": record.key,
        "raw": record.value,
        "headers": {k: v.decode("utf-8", "replace") for k, v in record.headers},
        "original_timestamp": _from_millis(text_header(record, r.DLQ_ORIGINAL_TIMESTAMP)),
    }
    return DeadLetterRow(record, event_id, claimed_tenant(record) if event_id else None, row)


def claimed_tenant(record: RecordIn) -> str | None:
    """The tenant a dead letter's original record names (structured or binary mode), if any."""
    try:
        raw = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        raw = None
    tenant = raw.get("tenantid") if isinstance(raw, dict) else text_header(record, "ce_tenantid")
    return tenant if isinstance(tenant, str) and tenant else None


def dead_lettered_event_row(dead_letter: DeadLetterRow) -> Row:
    row = dead_letter.row
    return {
        "id": dead_letter.event_id,
        "tenant_id": dead_letter.tenant_id,
        "status": EventStatus.DEAD_LETTERED.value,
        "error_message": f"{row['reason']}: {row['detail']}",
        "source_topic": row["topic"],
        "source_partition": row["partition"],
        "source_offset": row["offset"],
    }


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def _from_millis(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value and value.isdigit() else None
    except (OverflowError, ValueError, OSError):
        return None
