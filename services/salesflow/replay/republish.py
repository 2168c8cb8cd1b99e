"""Per-event replay: read an event's original record back from Kafka and publish it again, marked.

The copy goes to the same topic and partition as the original (so it stays in order with the rest of
its lead, whatever partitioner the first producer used), with the same key, value and headers, plus
``salesflow.replay`` naming the original position: the processor counts it as a replay, recomputes its
facts, and keeps it out of the freshness SLI and the business counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import orjson
from aiokafka import AIOKafkaProducer

from salesflow.domain.records import REPLAY_HEADER, RecordIn
from salesflow.replay.reader import record_reader
from salesflow.replay.store import EventPosition
from salesflow.settings import Settings

ReplayStatus = Literal["republished", "no_source_record", "source_gone", "mismatch"]


@dataclass(frozen=True)
class ReplayResult:
    event_id: UUID
    status: ReplayStatus
    detail: str | None = None
    original: tuple[str, int, int] | None = None
    republished: tuple[str, int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "republished"

    def as_dict(self) -> dict[str, Any]:
        def pos(p: tuple[str, int, int] | None) -> dict[str, Any] | None:
            return None if p is None else {"topic": p[0], "partition": p[1], "offset": p[2]}

        return {
            "event_id": str(self.event_id),
            "status": self.status,
            "detail": self.detail,
            "original": pos(self.original),
            "republished": pos(self.republished),
        }


class Replayer:
    """Re-publishes the original records of events; one producer, a short-lived reader per call.
    ``bootstrap.replayer(settings)`` builds one with a producer of its own."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.producer = producer

    async def replay(self, selected: Sequence[EventPosition]) -> list[ReplayResult]:
        """Replay ``selected`` in the order of their original offsets; one result per event."""
        results: dict[UUID, ReplayResult] = {}
        readable = [e for e in selected if e.position is not None]
        for event in selected:
            if event.position is None:
                results[event.event_id] = ReplayResult(
                    event.event_id, "no_source_record", "the event was never read from a source topic"
                )
        async with record_reader(self.settings) as reader:
            records = await reader.read(e.position for e in readable if e.position)
        sends: list[tuple[EventPosition, asyncio.Future[Any]]] = []
        for event in sorted(readable, key=lambda e: e.position or ("", 0, 0)):
            record = records.get(event.position) if event.position else None
            problem = _problem(event, record)
            if problem is not None or record is None:
                results[event.event_id] = problem or ReplayResult(event.event_id, "source_gone")
                continue
            sends.append((event, await self._send(record)))
        for event, future in sends:
            metadata = await future
            results[event.event_id] = ReplayResult(
                event.event_id,
                "republished",
                original=event.position,
                republished=(metadata.topic, metadata.partition, metadata.offset),
            )
        return [results[e.event_id] for e in selected]

    async def _send(self, record: RecordIn) -> asyncio.Future[Any]:
        origin = f"{record.topic}:{record.partition}:{record.offset}".encode()
        headers = [(k, v) for k, v in record.headers if k != REPLAY_HEADER] + [(REPLAY_HEADER, origin)]
        sent: asyncio.Future[Any] = await self.producer.send(
            record.topic, record.value, key=record.key, partition=record.partition, headers=headers
        )
        return sent


def _problem(event: EventPosition, record: RecordIn | None) -> ReplayResult | None:
    if record is None:
        return ReplayResult(
            event.event_id,
            "source_gone",
            "the original record is no longer in the log (retention or compaction)",
            original=event.position,
        )
    found = record_event_id(record)
    if _as_uuid(found) != event.event_id:
        return ReplayResult(
            event.event_id, "mismatch", f"the record at that position is event {found!r}", original=event.position
        )
    return None


def _as_uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def record_event_id(record: RecordIn) -> str | None:
    """The CloudEvents id of a record, in binary (``ce_id`` header) or structured mode, without validating."""
    header = record.header("ce_id")
    if header is not None:
        return header.decode("utf-8", "replace")
    try:
        value = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return None
    found = value.get("id") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None
