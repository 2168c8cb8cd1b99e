"""The Quix Streams peer of the benchmark (``bench/quix_peer.py``) does the worker's work: offline, no
Kafka, the same records through its dataframes (Quix's own ``StreamingDataFrame.test``, down to the
producer call, which is captured) and through the worker's core (``EventProcessor.process_batch``)
give the same records out: topics, keys, headers (the dead letters' reasons among them), command
values, and outcome JSON in every field but ``processed_at``. The input: the demo mix, the poison
corpus of ``tests/integration/test_poison.py`` and the demo's invalid records; once with the default
handlers (what the bench runs) and once with a handler that fails for some events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from quixstreams import Application, MessageContext
from quixstreams.kafka.producer import Producer
from quixstreams.models import Topic

from bench.quix_peer import PeerWork, RecordValue, add_pipeline, handler_table, output_topics
from salesflow.domain.events import CloudEvent, EventType, MessageSentV1
from salesflow.domain.outputs import Output
from salesflow.domain.records import Headers, RecordIn
from salesflow.domain.topics import Topics
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.metrics import PipelineMetrics
from salesflow.processor.core import EventProcessor
from salesflow.producer.demo import DemoGenerator, invalid_records
from salesflow.producer.envelope import encode, record_key
from tests.integration.test_poison import MAX_EVENT_BYTES, corpus

TOPICS = Topics()
GROUP = "salesflow-processor"
PARTITIONS = 6


@dataclass(frozen=True)
class Produced:
    """One record as handed to the Kafka client, compared field by field."""

    topic: str
    key: bytes | None
    value: Any  # an outcome's JSON without processed_at; any other record's bytes
    headers: Headers


def source_records() -> list[RecordIn]:
    """The demo mix (each event on its type's topic, keyed by lead), then every bad record on the
    leads topic, at increasing offsets."""
    inputs: list[tuple[str, bytes | None, bytes | None, Headers]] = []
    for event in DemoGenerator(seed=11).events(400):
        inputs.append((TOPICS.source(EventType(event["type"])), record_key(event), encode(event), ()))
    for _, value, headers, _ in corpus():
        inputs.append((TOPICS.source(EventType.LEAD_CREATED), b"acme:poison", value, headers))
    for value, _ in invalid_records():
        inputs.append((TOPICS.source(EventType.LEAD_CREATED), b"acme:invalid", value, ()))
    return [
        RecordIn(topic, n % PARTITIONS, n, 1_700_000_000_000 + n, key, value, headers)
        for n, (topic, key, value, headers) in enumerate(inputs)
    ]


def with_a_failing_handler() -> HandlerRegistry:
    """The default handlers, and one more on ``message.sent`` that fails for SMS messages."""
    registry = HandlerRegistry()
    for handler in DEFAULT_REGISTRY.all():
        registry.register(handler.event_type, name=handler.name)(handler.fn)

    @registry.register(EventType.MESSAGE_SENT, name="test.refuses_sms")
    async def refuses_sms(event: CloudEvent[MessageSentV1]) -> list[Output]:
        if event.data.channel == "sms":
            raise ValueError(f"no SMS for {event.tenantid}")
        return []

    return registry


def view(topic: str, key: bytes | None, value: bytes | None, headers: Any) -> Produced:
    if topic == TOPICS.outcomes:
        outcome = orjson.loads(value or b"")
        assert outcome.pop("processed_at")
        return Produced(topic, key, outcome, tuple(headers or ()))
    return Produced(topic, key, value, tuple(headers or ()))


async def core_outputs(records: list[RecordIn], registry: HandlerRegistry) -> list[list[Produced]]:
    """The worker's core, built as ``tests/unit/test_processor.py`` builds it."""
    processor = EventProcessor(
        registry=registry,
        metrics=PipelineMetrics(),
        topics=TOPICS,
        group=GROUP,
        max_event_bytes=MAX_EVENT_BYTES,
        policy=RetryPolicy(max_attempts=3, backoff_seconds=0),
    )
    batch = await processor.process_batch(records)
    return [[view(o.topic, o.key, o.value, o.headers) for o in outs] for outs in batch]


def peer_outputs(
    records: list[RecordIn], registry: HandlerRegistry, monkeypatch: pytest.MonkeyPatch
) -> list[list[Produced]]:
    """The peer's dataframes, each record through ``StreamingDataFrame.test``; what Quix hands to its
    Kafka producer (after its serializers) is captured instead of sent."""
    sent: list[Produced] = []
    timestamps: list[int | None] = []

    def produce(self: Producer, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> None:
        sent.append(view(topic, key, value, kwargs.get("headers")))
        timestamps.append(kwargs.get("timestamp"))

    monkeypatch.setattr(Producer, "produce", produce)
    # Nothing connects: Quix makes its Kafka clients on first use, and these topics are made here,
    # not looked up on a broker (what ``app.topic`` does in ``bench.quix_peer.build_app``).
    app = Application(broker_address="localhost:1", consumer_group=GROUP, loglevel="WARNING")
    work = PeerWork(TOPICS, GROUP, MAX_EVENT_BYTES, handler_table(registry))
    outputs = {name: Topic(name, value_serializer=RecordValue()) for name in output_topics(TOPICS)}
    sources = {name: Topic(name, value_deserializer="bytes") for name in TOPICS.sources}
    frames = {name: add_pipeline(app, topic, outputs, work) for name, topic in sources.items()}
    result = []
    for record in records:
        context = MessageContext(record.topic, record.partition, record.offset, len(record.value or b""))
        frames[record.topic].test(
            record.value,
            record.key,
            record.timestamp_ms or 0,
            list(record.headers) or None,
            ctx=context,
            topic=sources[record.topic],
        )
        result.append(sent.copy())
        sent.clear()
    assert set(timestamps) == {0}, "the peer leaves each record's timestamp to the client (its send time)"
    return result


@pytest.mark.parametrize("registry", [DEFAULT_REGISTRY, with_a_failing_handler()], ids=["default", "failing"])
async def test_the_quix_peer_publishes_what_the_worker_core_publishes(
    registry: HandlerRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = source_records()
    ours = await core_outputs(records, registry)
    peer = peer_outputs(records, registry, monkeypatch)

    assert len(peer) == len(ours) == len(records)
    for record, expected, got in zip(records, ours, peer, strict=True):
        assert got == expected, f"{record.topic} offset {record.offset}"
    # The input covers what the race is about: outcomes, commands and dead letters of every reason.
    produced = [p for outs in ours for p in outs]
    reasons = {dict(p.headers)["salesflow.dlq.reason"] for p in produced if p.topic == TOPICS.deadletter}
    assert {"not_json", "invalid_field", "missing_field", "too_large", "empty", "duplicate_key"} <= {
        r.decode() for r in reasons
    }
    assert {p.topic for p in produced} == set(output_topics(TOPICS))
    statuses = {p.value["status"] for p in produced if p.topic == TOPICS.outcomes}
    assert statuses == ({"processed", "failed"} if registry is not DEFAULT_REGISTRY else {"processed"})
