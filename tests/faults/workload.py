"""A stream of events with unique ids, produced with ``acks=all``, remembering which sends the broker
acknowledged; and what each event should leave in Postgres."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError

from salesflow.domain.events import EventType
from salesflow.kafka_clients import aiokafka_producer
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.envelope import encode, record_key
from salesflow.settings import Settings

# Rows per fact table that one event of each type leaves (sequence steps: one more on the last step).
FACT_ROWS: dict[str, dict[str, int]] = {
    "lead.created": {"funnel_facts": 1, "attribution_touches": 1},
    "autopilot.action_executed": {"ai_action_facts": 1},
    "message.sent": {"funnel_facts": 1, "attribution_touches": 1, "message_facts": 1},
    "sequence.step_executed": {"funnel_facts": 1, "sequence_step_facts": 1},
}


def expected_fact_rows(event: dict[str, Any]) -> dict[str, int]:
    rows = dict(FACT_ROWS[event["type"]])
    data = event["data"]
    if (
        event["type"] == "sequence.step_executed"
        and data["status"] != "failed"
        and data["step_index"] >= data["step_count"] - 1
    ):
        rows["funnel_facts"] += 1
    return rows


@dataclass
class Workload:
    settings: Settings
    count: int
    rate: float
    seed: int = field(default_factory=lambda: random.randrange(1 << 30))
    transform: Callable[[dict[str, Any]], dict[str, Any]] = lambda e: e
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    failed_sends: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Produce ``count`` events at ``rate`` per second; sends that fail stay unacknowledged."""
        producer = aiokafka_producer(self.settings, request_timeout_ms=10_000, retry_backoff_ms=200)
        await producer.start()
        started = time.monotonic()
        pending: list[tuple[str, asyncio.Future[Any]]] = []
        try:
            for n, event in enumerate(DemoGenerator(seed=self.seed).events(self.count), start=1):
                event = self.transform(event)
                self.events[event["id"]] = event
                topic = self.settings.topics.source(EventType(event["type"]))
                try:
                    pending.append((event["id"], await producer.send(topic, encode(event), key=record_key(event))))
                except KafkaError:
                    self.failed_sends += 1
                await asyncio.sleep(max(0.0, started + n / self.rate - time.monotonic()))
            for event_id, future in pending:
                try:
                    await future
                    self.acknowledged.add(event_id)
                except KafkaError:
                    self.failed_sends += 1
        finally:
            await producer.stop()
            self.done.set()
