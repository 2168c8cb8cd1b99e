"""The interface services publish through, and its outbox implementation.

``OutboxEventBus(session).publish(event)`` writes the event into the outbox table through the caller's
``AsyncSession``, inside the caller's transaction: it commits or rolls back with the business write,
and the relay publishes it once committed. It never commits or flushes the session itself.

Per-lead order: the insert first takes a transaction-scoped advisory lock on the record key. Two
transactions writing events of the same lead are thereby serialised from their first event to their
commit, so the later one's rows get higher ids and commit later: for each key, ``id`` order is
commit order, which is the order the relay publishes in. (Without it, a transaction holding a lower
id could commit after a higher one of the same lead was already published.) Rows of other keys are
never waited for: the relay reads every committed row each time, so a lower id that commits late
is published late, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from salesflow.domain.topics import Topics
from salesflow.outbox.schema import TABLE
from salesflow.producer.typed_events import ProducerEvent
from salesflow.tracing.producing import create_span
from salesflow.tracing.propagation import Carrier, current_carrier, into_envelope

CONTENT_TYPE = ("content-type", "application/cloudevents+json")
# The first half of the two-int advisory lock key: a namespace, so a service's own advisory locks on
# small integers never meet these.
KEY_LOCK_NAMESPACE = 0x5F0B0C5  # "SalesFlow OutBoX"

_INSERT = text(
    f"INSERT INTO {TABLE} (topic, key, value, headers) "
    "SELECT :topic, :key, :value, CAST(:headers AS jsonb) "
    "FROM (SELECT pg_advisory_xact_lock(:namespace, hashtext(:lock_key))) AS serialised"
)


class EventBus(Protocol):
    """What a service codes against: publish one typed event, with the request that caused it."""

    async def publish(self, event: ProducerEvent, *, request_id: str | None = None) -> None: ...


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row, as the relay will send it."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, str]]


def outbox_row(
    event: ProducerEvent, topics: Topics, request_id: str | None = None, trace: Carrier | None = None
) -> OutboxRow:
    """The record ``event`` becomes: its type's topic, the ``<tenant>:<lead>`` key, the CloudEvent
    with the trace context (``trace``, else the current one) as its ``traceparent`` extension."""
    envelope = into_envelope(event.to_cloudevent(request_id), current_carrier() if trace is None else trace)
    return OutboxRow(
        topic=topics.source(event.event_type),
        key=event.key.encode(),
        value=orjson.dumps(envelope),
        headers=[CONTENT_TYPE],
    )


@contextmanager
def traced_row(event: ProducerEvent, topics: Topics, request_id: str | None) -> Iterator[OutboxRow]:
    """``outbox_row`` inside a ``create`` span (the caller publishes within the ``with``)."""
    topic = topics.source(event.event_type)
    with create_span(topic, str(event.event_id), event.event_type.value, event.tenant_id) as carrier:
        yield outbox_row(event, topics, request_id, carrier)


class OutboxEventBus:
    """The outbox bus: events join the caller's transaction (``session``), and leave with its commit."""

    def __init__(self, session: AsyncSession, topics: Topics | None = None) -> None:
        self._session = session
        self._topics = topics or Topics()

    async def publish(self, event: ProducerEvent, *, request_id: str | None = None) -> None:
        """Add ``event`` to the outbox in the session's transaction (begun here if none is)."""
        with traced_row(event, self._topics, request_id) as row:
            await self._insert(event, row)

    async def _insert(self, event: ProducerEvent, row: OutboxRow) -> None:
        await self._session.execute(
            _INSERT,
            {
                "topic": row.topic,
                "key": row.key,
                "value": row.value,
                "headers": orjson.dumps(row.headers).decode(),
                "namespace": KEY_LOCK_NAMESPACE,
                "lock_key": event.key,
            },
        )
