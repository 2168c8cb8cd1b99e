"""Kafka records into table rows (pure: no I/O), ready for the batched upserts of ``writer``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from salesflow.domain import records as r
from salesflow.domain.decoding import decode_event
from salesflow.domain.outcome import EventStatus, Outcome
from salesflow.domain.records import RecordIn, text_header
from salesflow.errors import InvalidEvent

Row = dict[str, Any]


@dataclass
class Batch:
    """The rows one poll of the projection's topics turns into, in the order they are written."""

    pending: dict[Any, Row] = field(default_factory=dict)
    outcomes: dict[Any, Outcome] = field(default_factory=dict)
    dead_letters: list[Row] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pending) + len(self.outcomes) + len(self.dead_letters)

    def add_source(self, record: RecordIn, max_bytes: int) -> None:
        """A source record means `pending`; an invalid one is left to the processor's dead letter."""
        try:
            event = decode_event(record.value, record.headers, max_bytes=max_bytes)
        except InvalidEvent:
            return
        self.pending[event.id] = {
            "id": event.id,
            "type": event.type.value,
            "tenant_id": event.tenantid,
            "lead_id": event.lead_id,
            "status": EventStatus.PENDING.value,
            "created_at": event.time,
            "payload": event.model_dump(mode="json"),
            "source_topic": record.topic,
            "source_partition": record.partition,
            "source_offset": record.offset,
        }

    def add_outcome(self, record: RecordIn) -> None:
        outcome = Outcome.model_validate_json(record.value or b"")
        kept = self.outcomes.get(outcome.event_id)
        # One row can take one upsert per statement: keep the newest outcome of an event in this batch.
        if kept is None or kept.processed_at <= outcome.processed_at:
            self.outcomes[outcome.event_id] = outcome

    def add_dead_letter(self, record: RecordIn) -> None:
        original_ts = text_header(record, r.DLQ_ORIGINAL_TIMESTAMP)
        self.dead_letters.append(
            {
                "topic": text_header(record, r.DLQ_ORIGINAL_TOPIC) or record.topic,
                "partition": int(text_header(record, r.DLQ_ORIGINAL_PARTITION) or record.partition),
                "offset": int(text_header(record, r.DLQ_ORIGINAL_OFFSET) or record.offset),
                "event_id": _uuid_or_none(text_header(record, r.DLQ_EVENT_ID)),
                "reason": text_header(record, r.DLQ_REASON) or "unknown",
                "detail": text_header(record, r.DLQ_DETAIL),
                "record_key": record.key,
                "raw": record.value,
                "headers": {k: v.decode("utf-8", "replace") for k, v in record.headers},
                "original_timestamp": _from_millis(original_ts),
            }
        )


def outcome_event_row(outcome: Outcome) -> Row:
    return {
        "id": outcome.event_id,
        "type": outcome.type,
        "tenant_id": outcome.tenant_id,
        "lead_id": outcome.lead_id,
        "status": outcome.status.value,
        "created_at": outcome.occurred_at,
        "processed_at": outcome.processed_at,
        "error_message": outcome.error_message,
        "attempts": outcome.attempts,
        "replay_count": 1 if outcome.replay else 0,
        "source_topic": outcome.position.topic,
        "source_partition": outcome.position.partition,
        "source_offset": outcome.position.offset,
    }


def fact_rows(outcomes: list[Outcome]) -> dict[str, list[Row]]:
    """Facts grouped by kind, each a row for its table."""
    grouped: dict[str, list[Row]] = {}
    for outcome in outcomes:
        for fact in outcome.facts:
            grouped.setdefault(fact.kind, []).append(fact.model_dump(exclude={"kind"}))
    return grouped


def dead_lettered_event_row(dead_letter: Row) -> Row:
    return {
        "id": dead_letter["event_id"],
        "status": EventStatus.DEAD_LETTERED.value,
        "error_message": f"{dead_letter['reason']}: {dead_letter['detail']}",
        "source_topic": dead_letter["topic"],
        "source_partition": dead_letter["partition"],
        "source_offset": dead_letter["offset"],
    }


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def _from_millis(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(value) / 1000, UTC) if value and value.isdigit() else None
