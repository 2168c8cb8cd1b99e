"""The producer client upstream services use: idempotent, ``acks=all``, keyed by ``<tenant>:<lead>``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from salesflow.domain.events import EventType
from salesflow.domain.topics import Topics
from salesflow.producer.envelope import encode, record_key
from salesflow.tracing.propagation import current_carrier, into_binary_headers, into_envelope


@dataclass
class SendReport:
    """Which sends the broker acknowledged, and which failed (with the error)."""

    acknowledged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class EventProducer:
    def __init__(self, producer: AIOKafkaProducer, topics: Topics) -> None:
        self._producer = producer
        self.topics = topics

    async def send_event(self, event: dict[str, Any]) -> asyncio.Future[Any]:
        """Queue one structured-mode event on its type's topic; await the result for the broker's ack.
        The current trace context goes along as its ``traceparent`` unless the event has its own."""
        topic = self.topics.source(EventType(event["type"]))
        carrier = current_carrier()
        if carrier:
            event = into_envelope(dict(event), carrier)
        sent: asyncio.Future[Any] = await self._producer.send(topic, encode(event), key=record_key(event))
        return sent

    async def send_raw(
        self, topic: str, value: bytes | None, key: bytes | None = None, headers: Iterable[tuple[str, bytes]] = ()
    ) -> asyncio.Future[Any]:
        headers = list(headers)
        if any(name == "ce_specversion" for name, _ in headers):  # binary mode: ce_traceparent
            headers = into_binary_headers(headers, current_carrier())
        sent: asyncio.Future[Any] = await self._producer.send(topic, value, key=key, headers=headers or None)
        return sent

    async def send_all(self, events: Iterable[dict[str, Any]]) -> SendReport:
        """Send many events without awaiting each one, then wait for every acknowledgement."""
        pending = [(event["id"], await self.send_event(event)) for event in events]
        return await collect(pending)

    async def flush(self) -> None:
        await self._producer.flush()


async def collect(pending: list[tuple[str, asyncio.Future[Any]]]) -> SendReport:
    report = SendReport()
    results = await asyncio.gather(*(future for _, future in pending), return_exceptions=True)
    for (event_id, _), result in zip(pending, results, strict=True):
        if isinstance(result, BaseException):
            report.failed.append((event_id, repr(result)))
        else:
            report.acknowledged.append(event_id)
    return report
