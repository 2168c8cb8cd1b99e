"""The nemesis's workload and its own log of what was acknowledged or committed.

One seeded demo stream, drawn at a steady rate: each ``lead.created`` is written through the outbox
by a "lead service" (``OutboxEventBus`` in its own transaction; one in ten transactions rolled back
on purpose), the other three types go out through a plain idempotent producer, and now and then a
poison record (undecodable or invalid) goes with them. A commit that raised is ambiguous (it may have
committed): such an event may appear at most once, and is not counted lost.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from salesflow.db.engine import create_engine
from salesflow.domain.events import EventType
from salesflow.kafka_clients import aiokafka_producer
from salesflow.outbox.bus import OutboxEventBus
from salesflow.producer.demo import DemoGenerator, invalid_records
from salesflow.producer.envelope import encode, record_key
from salesflow.producer.typed_events import LeadCreatedEvent
from salesflow.settings import Settings

ROLLBACK_CHANCE = 0.1
POISON_CHANCE = 0.01


@dataclass
class Poison:
    topic: str
    partition: int
    offset: int
    reason: str


@dataclass
class LoadLog:
    """What the workload knows happened: the checker's reference."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the CloudEvent as sent
    acknowledged: set[str] = field(default_factory=set)  # plain sends the broker acknowledged
    committed: set[str] = field(default_factory=set)  # outbox rows whose transaction committed
    rolled_back: set[str] = field(default_factory=set)
    ambiguous: set[str] = field(default_factory=set)  # the commit raised: may or may not have landed
    poison: list[Poison] = field(default_factory=list)  # acknowledged poison records
    failed_sends: int = 0

    @property
    def expected(self) -> set[str]:
        return self.acknowledged | self.committed


@dataclass
class Load:
    settings: Settings
    service_url: str
    rate: float  # events per second, all types
    seed: int
    log: LoadLog = field(default_factory=LoadLog)
    leads: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def run(self, seconds: float) -> None:
        writer = asyncio.create_task(self._write_leads())
        try:
            await self._produce(seconds)
            await self.leads.join()
        finally:
            writer.cancel()

    async def _produce(self, seconds: float) -> None:
        rng = random.Random(self.seed)
        producer = aiokafka_producer(self.settings, request_timeout_ms=10_000, retry_backoff_ms=200)
        await producer.start()
        pending: list[tuple[Any, asyncio.Future[Any]]] = []
        poison = invalid_records(50)
        started = time.monotonic()
        try:
            for n, event in enumerate(DemoGenerator(seed=self.seed).events(int(seconds * self.rate)), start=1):
                if event["type"] == EventType.LEAD_CREATED.value:
                    self.leads.put_nowait(event)
                else:
                    self.log.events[event["id"]] = event
                    topic = self.settings.topics.source(EventType(event["type"]))
                    pending.append((event["id"], await self._send(producer, topic, encode(event), record_key(event))))
                if rng.random() < POISON_CHANCE:
                    value, reason = poison[n % len(poison)]
                    topic = self.settings.topics.source(EventType.MESSAGE_SENT)
                    pending.append((reason, await self._send(producer, topic, value, b"acme:poison")))
                await asyncio.sleep(max(0.0, started + n / self.rate - time.monotonic()))
            await self._settle(pending)
        finally:
            await producer.stop()

    async def _send(self, producer: Any, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[Any]:
        try:
            return await producer.send(topic, value, key=key)  # type: ignore[no-any-return]
        except KafkaError as exc:
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    async def _settle(self, pending: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        for what, future in pending:
            try:
                sent = await future
            except KafkaError:
                self.log.failed_sends += 1
                continue
            if what in self.log.events:
                self.log.acknowledged.add(what)
            else:
                self.log.poison.append(Poison(sent.topic, sent.partition, sent.offset, what))

    async def _write_leads(self) -> None:
        """The lead service: one transaction per lead, retried never (a failed one is simply not there)."""
        engine = create_engine(self.service_url)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        rng = random.Random(self.seed + 1)
        try:
            while True:
                event = await self.leads.get()
                try:
                    await self._one_lead(sessions, event, rollback=rng.random() < ROLLBACK_CHANCE)
                finally:
                    self.leads.task_done()
        finally:
            await engine.dispose()

    async def _one_lead(
        self, sessions: async_sessionmaker[AsyncSession], event: dict[str, Any], rollback: bool
    ) -> None:
        # Stamped now, as a service would when its own transaction begins (a backlog behind a Postgres
        # outage must not read as slow processing).
        typed = LeadCreatedEvent(tenant_id=event["tenantid"], event_id=event["id"], **event["data"])
        sent = typed.to_cloudevent()
        event_id = sent["id"]
        self.log.events[event_id] = sent
        committing = False
        try:
            async with sessions() as session:
                await OutboxEventBus(session, self.settings.topics).publish(typed)
                if rollback:
                    await session.rollback()
                    self.log.rolled_back.add(event_id)
                    return
                committing = True
                await session.commit()
            self.log.committed.add(event_id)
        except Exception:  # the database was away: before the commit, nothing landed
            if committing:
                self.log.ambiguous.add(event_id)
            else:
                self.log.rolled_back.add(event_id)
