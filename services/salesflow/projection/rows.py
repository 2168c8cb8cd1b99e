"""Kafka records into table rows (pure: no I/O), ready for the batched upserts of ``writer``.

Outcome records are read with orjson into plain rows, not through the ``Outcome`` model: they are
our own worker's output, and validating each one again was a fifth of the projection's time. A
malformed one still fails loudly (a missing key, a bad date or id, an unknown fact kind)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from salesflow.domain import records as r
from salesflow.domain.decoding import decode_event
from salesflow.domain.outcome import EventStatus
from salesflow.domain.records import RecordIn, text_header
from salesflow.errors import InvalidEvent

# The fact kinds an outcome may carry (the tables of ``db.schema.FACT_TABLES``), and their time fields.
FACT_KINDS = frozenset({"funnel", "attribution", "ai_action", "message", "sequence_step"})
FACT_TIMES = ("occurred_at", "queued_at", "sent_at")

Row = dict[str, Any]


@dataclass
class Batch:
    """The rows one poll of the projection's topics turns into, in the order they are written."""

    pending: dict[Any, Row] = field(default_factory=dict)
    outcomes: dict[Any, OutcomeRows] = field(default_factory=dict)
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
            "payload": event.model_dump_json(),  # JSON text, as the jsonb column takes it
            "source_topic": record.topic,
            "source_partition": record.partition,
            "source_offset": record.offset,
        }

    def add_outcome(self, record: RecordIn) -> None:
        outcome = parse_outcome(record.value or b"")
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


@dataclass
class OutcomeRows:
    """One outcome record as the rows it writes: its ``events`` row and its facts by kind."""

    event_id: UUID
    processed_at: datetime
    event: Row
    facts: dict[str, list[Row]]


def parse_outcome(value: bytes) -> OutcomeRows:
    raw = orjson.loads(value)
    event_id = UUID(raw["event_id"])
    processed_at = _timestamp(raw["processed_at"])
    position = raw["position"]
    event = {
        "id": event_id,
        "type": raw["type"],
        "tenant_id": raw["tenant_id"],
        "lead_id": raw["lead_id"],
        "status": raw["status"],
        "created_at": _timestamp(raw["occurred_at"]),
        "processed_at": processed_at,
        "error_message": raw.get("error_message"),
        "attempts": raw["attempts"],
        "replay_count": 1 if raw.get("replay") else 0,
        "source_topic": position["topic"],
        "source_partition": position["partition"],
        "source_offset": position["offset"],
    }
    facts: dict[str, list[Row]] = {}
    for fact in raw.get("facts", ()):
        kind = fact.pop("kind")
        if kind not in FACT_KINDS:
            raise ValueError(f"outcome of {event_id} has a fact of unknown kind {kind!r}")
        fact["event_id"] = UUID(fact["event_id"])
        for name in FACT_TIMES:
            if fact.get(name) is not None:
                fact[name] = _timestamp(fact[name])
        facts.setdefault(kind, []).append(fact)
    return OutcomeRows(event_id=event_id, processed_at=processed_at, event=event, facts=facts)


def fact_rows(outcomes: list[OutcomeRows]) -> dict[str, list[Row]]:
    """Facts grouped by kind, each a row for its table."""
    grouped: dict[str, list[Row]] = {}
    for outcome in outcomes:
        for kind, rows in outcome.facts.items():
            grouped.setdefault(kind, []).extend(rows)
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


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed


def _from_millis(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(value) / 1000, UTC) if value and value.isdigit() else None
