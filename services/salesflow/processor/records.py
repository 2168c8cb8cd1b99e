"""The records the processor publishes: outcomes, commands and dead letters."""

from __future__ import annotations

from salesflow.domain import records as r
from salesflow.domain.outcome import Outcome
from salesflow.domain.outputs import AutopilotCommand, Command
from salesflow.domain.records import RecordIn, RecordOut
from salesflow.domain.topics import Topics
from salesflow.errors import InvalidEvent


def lead_key(tenant_id: str, lead_id: str) -> bytes:
    """Records of one lead share a key, so they stay in order on one partition."""
    return f"{tenant_id}:{lead_id}".encode()


def outcome_record(outcome: Outcome, topics: Topics) -> RecordOut:
    return RecordOut(
        topic=topics.outcomes,
        key=lead_key(outcome.tenant_id, outcome.lead_id),
        value=outcome.model_dump_json().encode(),
        headers=(("salesflow.event.id", str(outcome.event_id).encode()), ("salesflow.status", outcome.status.encode())),
    )


def command_record(command: Command, topics: Topics) -> RecordOut:
    topic = topics.autopilot_commands if isinstance(command, AutopilotCommand) else topics.notifications
    return RecordOut(
        topic=topic,
        key=lead_key(command.tenant_id, command.lead_id),
        value=command.model_dump_json().encode(),
        headers=(("salesflow.command.id", str(command.command_id).encode()),),
    )


def dead_letter_record(record: RecordIn, error: InvalidEvent, group: str, topics: Topics) -> RecordOut:
    """The original key and bytes, with headers saying where they came from and why they were refused."""
    headers: list[tuple[str, bytes]] = [
        (r.DLQ_REASON, error.reason.value.encode()),
        (r.DLQ_DETAIL, error.detail.encode()[:4000]),
        (r.DLQ_ORIGINAL_TOPIC, record.topic.encode()),
        (r.DLQ_ORIGINAL_PARTITION, str(record.partition).encode()),
        (r.DLQ_ORIGINAL_OFFSET, str(record.offset).encode()),
        (r.DLQ_CONSUMER_GROUP, group.encode()),
        (r.DLQ_EXCEPTION_CLASS, type(error).__name__.encode()),
        (r.DLQ_EXCEPTION_MESSAGE, str(error).encode()[:4000]),
    ]
    if record.timestamp_ms is not None:
        headers.append((r.DLQ_ORIGINAL_TIMESTAMP, str(record.timestamp_ms).encode()))
    if error.event_id:
        headers.append((r.DLQ_EVENT_ID, error.event_id.encode()))
    # The original headers travel along, so a redrive can restore a binary-mode record as it was.
    return RecordOut(topic=topics.deadletter, key=record.key, value=record.value, headers=(*record.headers, *headers))
