"""Kafka records as plain values, and the header names of our own records (dead letters, replays)."""

from __future__ import annotations

from typing import Any

import msgspec

Headers = tuple[tuple[str, bytes], ...]

# Dead-letter headers, after the conventions of Kafka Connect and Spring Kafka.
DLQ_REASON = "salesflow.dlq.reason"
DLQ_DETAIL = "salesflow.dlq.detail"
DLQ_ORIGINAL_TOPIC = "salesflow.dlq.original.topic"
DLQ_ORIGINAL_PARTITION = "salesflow.dlq.original.partition"
DLQ_ORIGINAL_OFFSET = "salesflow.dlq.original.offset"
DLQ_ORIGINAL_TIMESTAMP = "salesflow.dlq.original.timestamp"
DLQ_CONSUMER_GROUP = "salesflow.dlq.consumer.group"
DLQ_EXCEPTION_CLASS = "salesflow.dlq.exception.class"
DLQ_EXCEPTION_MESSAGE = "salesflow.dlq.exception.message"
DLQ_EVENT_ID = "salesflow.dlq.event.id"

# Set on records re-published by a per-event replay, so the processor knows it is a replay.
REPLAY_HEADER = "salesflow.replay"


class RecordIn(msgspec.Struct, frozen=True):
    """One record as read from Kafka (a struct: built in C, one per record the worker reads)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    @classmethod
    def from_consumer_record(cls, record: Any) -> RecordIn:
        """From an aiokafka ``ConsumerRecord`` (duck-typed: the domain does not import aiokafka)."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers or ()),
        )

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


class RecordOut(msgspec.Struct, frozen=True):
    """One record to publish."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


def text_header(record: RecordIn, name: str) -> str | None:
    raw = record.header(name)
    return raw.decode("utf-8", "replace") if raw is not None else None
