"""The records the processor publishes: outcomes, commands and dead letters."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import msgspec

from salesflow.domain import records as r
from salesflow.domain.outcome import Outcome
from salesflow.domain.outputs import AutopilotCommand, Command
from salesflow.domain.records import RecordIn, RecordOut
from salesflow.domain.topics import Topics
from salesflow.errors import InvalidEvent

# The largest record the worker publishes whole: librdkafka's default `message.max.bytes` and Faust's
# producer request limit are 1,000,000 bytes, below the broker's default 1,048,588 per batch.
MAX_RECORD_BYTES = 1_000_000
# Per-record framing and our own headers are small; this keeps a margin for them.
RECORD_OVERHEAD_BYTES = 16 * 1024
# What is kept of an original that does not fit: enough to recognise it, small enough to always fit.
TRUNCATED_VALUE_BYTES = 64 * 1024

# Headers of a dead letter whose original did not fit on the dead-letter topic whole.
DLQ_TRUNCATED = "salesflow.dlq.original.truncated"  # what was cut: "value", "headers" or "value,headers"
DLQ_ORIGINAL_SIZE = "salesflow.dlq.original.size"  # the original value's size in bytes
DLQ_ORIGINAL_SHA256 = "salesflow.dlq.original.sha256"  # hex digest of the original value


def lead_key(tenant_id: str, lead_id: str) -> bytes:
    """Records of one lead share a key, so they stay in order on one partition."""
    return f"{tenant_id}:{lead_id}".encode()


_ENCODER = msgspec.json.Encoder()


def struct_json(struct: Any) -> bytes:
    """A record value: the struct's JSON, written by msgspec in C (UUIDs and times as strings, UTC
    times with ``Z``, enums by value, a tagged struct's tag first)."""
    return _ENCODER.encode(struct)


def uuid_text(value: UUID) -> bytes:
    """A UUID's canonical text as bytes, written in C (``str(uuid)`` is Python code, per record)."""
    return _ENCODER.encode(value)[1:-1]


def outcome_record(outcome: Outcome, topics: Topics) -> RecordOut:
    return RecordOut(
        topic=topics.outcomes,
        key=lead_key(outcome.tenant_id, outcome.lead_id),
        value=struct_json(outcome),
        headers=(("salesflow.event.id", uuid_text(outcome.event_id)), ("salesflow.status", outcome.status.encode())),
    )


def command_record(command: Command, topics: Topics) -> RecordOut:
    topic = topics.autopilot_commands if isinstance(command, AutopilotCommand) else topics.notifications
    return RecordOut(
        topic=topic,
        key=lead_key(command.tenant_id, command.lead_id),
        value=struct_json(command),
        headers=(("salesflow.command.id", uuid_text(command.command_id)),),
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
    # The original headers travel along (unless they alone are too large), so a redrive can restore a
    # binary-mode record as it was.
    return _fitting(RecordOut(topics.deadletter, record.key, record.value, tuple(headers)), record)


def record_size(record: RecordOut) -> int:
    """Bytes of key, value and headers: what counts against the broker's limit, framing aside."""
    return len(record.key or b"") + len(record.value or b"") + sum(len(k) + len(v) for k, v in record.headers)


def _fitting(ours: RecordOut, original: RecordIn) -> RecordOut:
    """The dead letter with the original headers and value; or, when that would exceed the record
    limit (the broker would refuse it and the worker stop on it after every restart), with the value
    cut to its first bytes (and an oversized key cut, the original headers left out if they alone do
    not fit), said so in a header with the original value's size and SHA-256 digest."""
    whole = RecordOut(ours.topic, ours.key, ours.value, (*original.headers, *ours.headers))
    budget = MAX_RECORD_BYTES - RECORD_OVERHEAD_BYTES
    if record_size(whole) <= budget:
        return whole
    value = original.value or b""
    cut = ["value"]
    key = ours.key
    if key is not None and len(key) > TRUNCATED_VALUE_BYTES:
        cut.append("key")
        key = key[:TRUNCATED_VALUE_BYTES]
    headers = whole.headers
    if record_size(RecordOut(ours.topic, key, None, headers)) + TRUNCATED_VALUE_BYTES > budget:
        cut.append("headers")
        headers = ours.headers
    return RecordOut(
        topic=ours.topic,
        key=key,
        value=value[:TRUNCATED_VALUE_BYTES],
        headers=(
            *headers,
            (DLQ_TRUNCATED, ",".join(cut).encode()),
            (DLQ_ORIGINAL_SIZE, str(len(value)).encode()),
            (DLQ_ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
        ),
    )
