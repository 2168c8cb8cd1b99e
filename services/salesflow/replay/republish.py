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
from salesflow.tracing.producing import replay_span
from salesflow.tracing.propagation import TRACEPARENT, TRACESTATE, Carrier, header_text, into_headers

# ``queued``: in the outbox, in the same transaction as the replay's audit row (the API's replays).
ReplayStatus = Literal["republished", "queued", "no_source_record", "source_gone", "mismatch"]


@dataclass(frozen=True)
class ReplayResult:
    event_id: UUID
    status: ReplayStatus
    detail: str | None = None
    original: tuple[str, int, int] | None = None
    republished: tuple[str, int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("republished", "queued")

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
        found, results = await originals(self.settings, selected)
        sends: list[tuple[EventPosition, asyncio.Future[Any]]] = []
        for event, record in found:
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
        # The replayed record's ``traceparent`` header: this replay's span, linked to the original trace.
        with replay_span(record.topic, record_event_id(record) or "", original_trace(record)) as carrier:
            headers = replay_headers(record, carrier)
            sent: asyncio.Future[Any] = await self.producer.send(
                record.topic, record.value, key=record.key, partition=record.partition, headers=headers
            )
        return sent


async def originals(
    settings: Settings, selected: Sequence[EventPosition]
) -> tuple[list[tuple[EventPosition, RecordIn]], dict[UUID, ReplayResult]]:
    """The original records of ``selected`` that can be replayed, in the order of their positions; and
    a result for each event that cannot (never on a source topic, gone from the log, another event)."""
    results: dict[UUID, ReplayResult] = {}
    readable = [e for e in selected if e.position is not None]
    for event in selected:
        if event.position is None:
            results[event.event_id] = ReplayResult(
                event.event_id, "no_source_record", "the event was never read from a source topic"
            )
    if not readable:
        return [], results
    async with record_reader(settings) as reader:
        records = await reader.read(e.position for e in readable if e.position)
    found: list[tuple[EventPosition, RecordIn]] = []
    for event in sorted(readable, key=lambda e: e.position or ("", 0, 0)):
        record = records.get(event.position) if event.position else None
        problem = _problem(event, record)
        if problem is not None or record is None:
            results[event.event_id] = problem or ReplayResult(event.event_id, "source_gone")
            continue
        found.append((event, record))
    return found, results


def replay_headers(record: RecordIn, trace: Carrier | None = None) -> list[tuple[str, bytes]]:
    """The original's headers, with ``salesflow.replay`` naming the original's position, and the
    replay's trace context (``trace``) as ``traceparent`` in place of an earlier one."""
    origin = f"{record.topic}:{record.partition}:{record.offset}".encode()
    dropped = {REPLAY_HEADER, *trace} if trace else {REPLAY_HEADER}
    return [(k, v) for k, v in record.headers if k not in dropped] + [
        (REPLAY_HEADER, origin),
        *into_headers(trace or {}),
    ]


def traced_replay_headers(record: RecordIn) -> list[tuple[str, bytes]]:
    """``replay_headers`` with a span for the replay under the current one (the API request's), whose
    context becomes the record's ``traceparent``, linked to the original's trace."""
    with replay_span(record.topic, record_event_id(record) or "", original_trace(record)) as carrier:
        return replay_headers(record, carrier)


def original_trace(record: RecordIn) -> Carrier:
    """The original's own context: a ``traceparent`` header (a replay of a replay), the ``ce_``
    header (binary mode), or the envelope's extension (structured), without validating."""
    for prefix in ("", "ce_"):
        found = header_text(record.headers, prefix + TRACEPARENT)
        if found is not None:
            state = header_text(record.headers, prefix + TRACESTATE)
            return {TRACEPARENT: found, **({TRACESTATE: state} if state else {})}
    try:
        value = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(value, dict) or not isinstance(value.get(TRACEPARENT), str):
        return {}
    return {k: value[k] for k in (TRACEPARENT, TRACESTATE) if isinstance(value.get(k), str)}


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
