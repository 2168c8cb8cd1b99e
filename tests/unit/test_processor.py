"""The processor's decisions for one record, without Kafka: outcome, commands, dead letter, retries."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import orjson
import pytest

from salesflow.domain import records as r
from salesflow.domain.events import ActionOutcome, CloudEvent, EventType
from salesflow.domain.outcome import Outcome
from salesflow.domain.outputs import AIActionFact, AttributionTouch, FunnelFact, FunnelStage, Observation, Output
from salesflow.domain.records import RecordIn, RecordOut
from salesflow.domain.topics import Topics
from salesflow.errors import DeadLetterReason, InvalidEvent, TransientHandlerError
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.metrics import PipelineMetrics
from salesflow.processor.core import EventProcessor
from salesflow.processor.outbound import (
    DLQ_ORIGINAL_SHA256,
    DLQ_ORIGINAL_SIZE,
    DLQ_TRUNCATED,
    MAX_RECORD_BYTES,
    dead_letter_record,
    record_size,
)
from salesflow.testing.factories import event_dict

TOPICS = Topics()
NOW = datetime(2026, 11, 24, 12, 0, 3, tzinfo=UTC)


def processor(registry: HandlerRegistry = DEFAULT_REGISTRY, attempts: int = 3) -> EventProcessor:
    return EventProcessor(
        registry=registry,
        metrics=PipelineMetrics(),
        topics=TOPICS,
        group="g",
        max_event_bytes=4096,
        policy=RetryPolicy(max_attempts=attempts, backoff_seconds=0),
        clock=lambda: NOW,
    )


async def process_one(p: EventProcessor, one: RecordIn) -> list[RecordOut]:
    """The records ``p`` publishes for one record (a batch of one)."""
    [out] = await p.process_batch([one])
    return out


def record(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = (), offset: int = 5) -> RecordIn:
    return RecordIn(
        topic=TOPICS.source(EventType.LEAD_CREATED),
        partition=1,
        offset=offset,
        timestamp_ms=1_700_000_000_000,
        key=b"acme:lead-1",
        value=value,
        headers=headers,
    )


def metric(p: EventProcessor, name: str, labels: dict[str, str] | None = None) -> float:
    return p.metrics.registry.get_sample_value(name, labels or {}) or 0.0


async def test_a_valid_event_becomes_one_outcome_and_its_commands() -> None:
    event = event_dict(EventType.LEAD_CREATED, autopilot=True, owner_id="user-1")
    p = processor()
    out = await process_one(p, record(orjson.dumps(event)))
    assert [o.topic for o in out] == [TOPICS.outcomes, TOPICS.autopilot_commands, TOPICS.notifications]
    assert all(o.key == b"acme:lead-1" for o in out)
    outcome = msgspec.json.decode(out[0].value or b"", type=Outcome)
    assert (str(outcome.event_id), outcome.status, outcome.attempts, outcome.replay) == (
        event["id"],
        "processed",
        1,
        False,
    )
    assert (outcome.position.partition, outcome.position.offset) == (1, 5)
    assert sorted(f.kind for f in outcome.facts) == ["attribution", "funnel"]
    assert metric(p, "salesflow_events_processed_total", {"type": "lead.created", "status": "processed"}) == 1
    assert metric(p, "salesflow_event_freshness_seconds_count", {"type": "lead.created"}) == 1
    assert metric(p, "salesflow_leads_created_total", {"source": "web_form"}) == 1


async def test_an_invalid_record_becomes_a_dead_letter_with_where_and_why() -> None:
    bad = orjson.dumps({**event_dict(EventType.LEAD_CREATED), "type": "lead.exploded"})
    p = processor()
    [dead] = await process_one(p, record(bad, headers=(("trace", b"t-1"),)))
    headers = dict(dead.headers)
    assert dead.topic == TOPICS.deadletter and dead.value == bad and dead.key == b"acme:lead-1"
    assert headers[r.DLQ_REASON] == b"unknown_type"
    assert headers[r.DLQ_ORIGINAL_TOPIC] == TOPICS.source(EventType.LEAD_CREATED).encode()
    assert (headers[r.DLQ_ORIGINAL_PARTITION], headers[r.DLQ_ORIGINAL_OFFSET]) == (b"1", b"5")
    assert headers[r.DLQ_CONSUMER_GROUP] == b"g" and headers["trace"] == b"t-1"
    assert headers[r.DLQ_EVENT_ID] == orjson.loads(bad)["id"].encode()
    assert metric(p, "salesflow_dead_letters_total", {"reason": "unknown_type"}) == 1


def flaky_registry(failures: int, exc: type[Exception]) -> tuple[HandlerRegistry, list[int]]:
    registry = HandlerRegistry()
    calls: list[int] = []

    @registry.register(EventType.LEAD_CREATED, name="flaky")
    async def flaky(event: CloudEvent[Any]) -> list[Output]:
        calls.append(1)
        if len(calls) <= failures:
            raise exc("downstream said no")
        return []

    return registry, calls


async def test_a_transient_error_is_retried_until_it_succeeds() -> None:
    registry, calls = flaky_registry(2, TransientHandlerError)
    [out] = await process_one(processor(registry, attempts=3), record(orjson.dumps(event_dict(EventType.LEAD_CREATED))))
    outcome = msgspec.json.decode(out.value or b"", type=Outcome)
    assert (outcome.status, outcome.attempts, len(calls)) == ("processed", 3, 3)


async def test_a_transient_error_past_the_last_attempt_fails_the_event_with_the_error() -> None:
    registry, calls = flaky_registry(10, TimeoutError)
    [out] = await process_one(processor(registry, attempts=3), record(orjson.dumps(event_dict(EventType.LEAD_CREATED))))
    outcome = msgspec.json.decode(out.value or b"", type=Outcome)
    assert (outcome.status, outcome.attempts, len(calls)) == ("failed", 3, 3)
    assert outcome.error_message == "flaky: TimeoutError: downstream said no"


@pytest.mark.parametrize("exc", [ValueError, KeyError])
async def test_a_permanent_error_is_not_retried(exc: type[Exception]) -> None:
    registry, calls = flaky_registry(10, exc)
    [out] = await process_one(processor(registry), record(orjson.dumps(event_dict(EventType.LEAD_CREATED))))
    assert msgspec.json.decode(out.value or b"", type=Outcome).status == "failed" and len(calls) == 1


async def test_a_replayed_record_is_marked_and_counts_no_business_metric_or_freshness() -> None:
    p = processor()
    [out, *_] = await process_one(
        p, record(orjson.dumps(event_dict(EventType.LEAD_CREATED)), headers=((r.REPLAY_HEADER, b"1"),))
    )
    assert msgspec.json.decode(out.value or b"", type=Outcome).replay is True
    assert metric(p, "salesflow_events_replayed_total", {"type": "lead.created"}) == 1
    assert metric(p, "salesflow_event_freshness_seconds_count", {"type": "lead.created"}) == 0
    assert metric(p, "salesflow_leads_created_total", {"source": "web_form"}) == 0


async def test_dead_letters_and_failures_are_logged_with_the_events_fields(caplog: pytest.LogCaptureFixture) -> None:
    bad = orjson.dumps({**event_dict(EventType.LEAD_CREATED), "type": "lead.exploded"})
    registry, _ = flaky_registry(10, ValueError)
    event = event_dict(EventType.LEAD_CREATED)
    with caplog.at_level("WARNING", logger="salesflow.processor.core"):
        await process_one(processor(), record(bad, offset=7))
        await process_one(processor(registry), record(orjson.dumps(event), offset=8))
    dead, failed = caplog.records
    # The fields below come from the log calls' extra=: attributes of the record that mypy cannot see.
    assert (dead.reason, dead.offset, dead.topic, dead.event_id) == (  # type: ignore[attr-defined]  # see above
        "unknown_type",
        7,
        TOPICS.source(EventType.LEAD_CREATED),
        orjson.loads(bad)["id"],
    )
    assert (failed.event_id, failed.event_type, failed.status, failed.offset) == (  # type: ignore[attr-defined]  # see above
        event["id"],
        "lead.created",
        "failed",
        8,
    )


async def test_a_batch_gives_each_records_outputs_in_order_and_counts_its_metrics_once() -> None:
    bad = orjson.dumps({**event_dict(EventType.LEAD_CREATED), "type": "lead.exploded"})
    good = [orjson.dumps(event_dict(EventType.LEAD_CREATED, autopilot=False)) for _ in range(2)]
    p = processor()
    out = await p.process_batch([record(good[0], offset=1), record(bad, offset=2), record(good[1], offset=3)])
    assert [[o.topic for o in outs] for outs in out] == [
        [TOPICS.outcomes, TOPICS.notifications],
        [TOPICS.deadletter],
        [TOPICS.outcomes, TOPICS.notifications],
    ]
    assert [msgspec.json.decode(outs[0].value or b"", type=Outcome).position.offset for outs in (out[0], out[2])] == [
        1,
        3,
    ]
    topic = TOPICS.source(EventType.LEAD_CREATED)
    assert metric(p, "salesflow_events_consumed_total", {"topic": topic}) == 3
    assert metric(p, "salesflow_events_processed_total", {"type": "lead.created", "status": "processed"}) == 2
    assert metric(p, "salesflow_dead_letters_total", {"reason": "unknown_type"}) == 1
    assert metric(p, "salesflow_leads_created_total", {"source": "web_form"}) == 2
    assert metric(p, "salesflow_event_freshness_seconds_count", {"type": "lead.created"}) == 2


@pytest.mark.parametrize(
    ("observation", "error"),
    [
        (Observation(metric="leads_lost_total"), "observation of unknown metric 'leads_lost_total'"),
        (Observation(metric="leads_created_total"), "labelled []; it takes ['source']"),
        (
            Observation(metric="leads_created_total", labels=(("source", "a"), ("source", "b"))),
            "labelled ['source', 'source']",
        ),
        (Observation(metric="ai_cost_usd_total", value=-1.0), "with value -1.0"),
        (Observation(metric="ai_cost_usd_total", value=math.inf), "with value inf"),
        (
            Observation(metric="message_processing_latency_seconds", value=math.nan, labels=(("channel", "email"),)),
            "with value nan",
        ),
    ],
)
async def test_an_observation_the_metrics_cannot_take_fails_its_own_event_not_the_batch(
    observation: Observation, error: str
) -> None:
    registry = HandlerRegistry()
    for handler in DEFAULT_REGISTRY.handlers_for(EventType.LEAD_CREATED):
        registry.register(EventType.LEAD_CREATED, name=handler.name)(handler.fn)
    bad_event = event_dict(EventType.LEAD_CREATED, autopilot=False)

    @registry.register(EventType.LEAD_CREATED, name="careless")
    async def careless(event: CloudEvent[Any]) -> list[Output]:
        return [observation] if str(event.id) == bad_event["id"] else []

    p = processor(registry)
    good = [orjson.dumps(event_dict(EventType.LEAD_CREATED, autopilot=False)) for _ in range(2)]
    out = await p.process_batch(
        [record(good[0], offset=1), record(orjson.dumps(bad_event), offset=2), record(good[1], offset=3)]
    )
    outcomes = [msgspec.json.decode(outs[0].value or b"", type=Outcome) for outs in out]
    assert [o.status for o in outcomes] == ["processed", "failed", "processed"]
    assert outcomes[1].error_message is not None and error in outcomes[1].error_message
    assert outcomes[1].error_message.startswith("careless: ValueError: ")
    assert metric(p, "salesflow_leads_created_total", {"source": "web_form"}) == 3  # the analytics handler ran
    assert metric(p, "salesflow_events_processed_total", {"type": "lead.created", "status": "failed"}) == 1
    assert metric(p, "salesflow_ai_cost_usd_total") == 0


def test_a_dead_letter_that_would_not_fit_is_cut_with_its_size_and_digest() -> None:
    value = b"{" + b"x" * (1_048_200 - 1)
    original = RecordIn(TOPICS.source(EventType.LEAD_CREATED), 0, 9, None, b"acme:l", value, (("trace", b"t"),))
    error = InvalidEvent(DeadLetterReason.TOO_LARGE, "too large")
    dead = dead_letter_record(original, error, "g", TOPICS)
    headers = dict(dead.headers)
    assert record_size(dead) < MAX_RECORD_BYTES and value.startswith(dead.value or b"x") and dead.value
    assert headers[DLQ_TRUNCATED] == b"value" and headers["trace"] == b"t" and headers[r.DLQ_REASON] == b"too_large"
    assert headers[DLQ_ORIGINAL_SIZE] == b"1048200"
    assert headers[DLQ_ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode()
    small = dead_letter_record(RecordIn("t", 0, 1, None, None, b"{}", ()), error, "g", TOPICS)
    assert small.value == b"{}" and DLQ_TRUNCATED not in dict(small.headers)  # what fits goes whole


def test_original_headers_too_large_to_fit_are_left_out_and_said_so() -> None:
    huge_headers = tuple((f"h{n}", b"y" * 100_000) for n in range(12))
    original = RecordIn("t", 0, 1, None, None, b"{}", huge_headers)
    dead = dead_letter_record(original, InvalidEvent(DeadLetterReason.NOT_JSON, "no"), "g", TOPICS)
    assert record_size(dead) < MAX_RECORD_BYTES
    assert dict(dead.headers)[DLQ_TRUNCATED] == b"value,headers" and "h0" not in dict(dead.headers)


@pytest.mark.parametrize(
    ("bend", "error"),
    [
        ({"campaign": "spring\x00"}, "AttributionTouch.campaign: contains a NUL character"),
        ({"occurred_at": datetime(10_000 - 1, 12, 31, 12, tzinfo=UTC)}, "occurred_at: Input should be less than"),
        ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at: a time needs a zone"),
        ({"tenant_id": "\x00"}, "tenant_id: contains a NUL character"),
    ],
)
async def test_a_handler_that_returns_an_invalid_fact_fails_for_that_event_with_the_reason(
    bend: dict[str, Any], error: str
) -> None:
    """A fact checks itself as the handler makes it: a value its column cannot hold fails that handler
    for that event, with the reason, and never reaches the projection; the other events go on."""
    registry = HandlerRegistry()
    bad_event = event_dict(EventType.LEAD_CREATED, autopilot=False)

    @registry.register(EventType.LEAD_CREATED, name="careless")
    async def careless(event: CloudEvent[Any]) -> list[Output]:
        base: dict[str, Any] = {"event_id": event.id, "tenant_id": event.tenantid, "lead_id": event.lead_id}
        values = {**base, "occurred_at": event.time, "touch": "first_touch", "campaign": "spring"}
        return [AttributionTouch(**(values | bend if str(event.id) == bad_event["id"] else values))]

    p = processor(registry)
    good = orjson.dumps(event_dict(EventType.LEAD_CREATED, autopilot=False))
    out = await p.process_batch([record(orjson.dumps(bad_event), offset=1), record(good, offset=2)])
    outcomes = [msgspec.json.decode(outs[0].value or b"", type=Outcome) for outs in out]
    assert [o.status for o in outcomes] == ["failed", "processed"]
    assert outcomes[0].facts == () and len(outcomes[1].facts) == 1
    assert outcomes[0].error_message is not None and outcomes[0].error_message.startswith("careless: ValueError: ")
    assert error in outcomes[0].error_message


@pytest.mark.parametrize(
    ("fact", "error"),
    [
        ({"cost_usd": 1e9, "value_usd": 1.0}, "cost_usd: 1000000000.0 is outside 0 to 99999999.999999"),
        ({"cost_usd": 1.0, "value_usd": math.nan}, "value_usd: not a finite number"),
        ({"cost_usd": 1.0, "value_usd": 1.0, "tokens": 2**31}, "tokens: 2147483648 is outside 0 to 2147483647"),
    ],
)
def test_a_fact_refuses_a_number_its_column_cannot_hold(fact: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        AIActionFact(
            event_id=UUID(event_dict(EventType.AUTOPILOT_ACTION_EXECUTED)["id"]),
            tenant_id="acme",
            lead_id="l",
            occurred_at=NOW,
            action_id="a",
            action_type="send",
            outcome=ActionOutcome.SUCCEEDED,
            **fact,
        )


def waiting_registry(fail_once: bool) -> tuple[HandlerRegistry, list[str]]:
    """Three handlers in order: one that finishes at once, one that waits on the event loop (and, with
    ``fail_once``, fails its first attempt after waiting, transiently), and one more that finishes at once."""
    registry = HandlerRegistry()
    calls: list[str] = []

    def fact(event: CloudEvent[Any], stage: FunnelStage) -> FunnelFact:
        return FunnelFact(
            event_id=event.id, tenant_id=event.tenantid, lead_id=event.lead_id, occurred_at=event.time, stage=stage
        )

    @registry.register(EventType.LEAD_CREATED, name="first")
    async def first(event: CloudEvent[Any]) -> list[Output]:
        calls.append("first")
        return [fact(event, "created")]

    @registry.register(EventType.LEAD_CREATED, name="waits")
    async def waits(event: CloudEvent[Any]) -> list[Output]:
        calls.append("waits")
        await asyncio.sleep(0.01)  # a real wait on the loop: a timer future
        await asyncio.sleep(0)  # and a bare yield
        if fail_once and calls.count("waits") == 1:
            raise TransientHandlerError("the CRM timed out")
        return [fact(event, "contacted")]

    @registry.register(EventType.LEAD_CREATED, name="last")
    async def last(event: CloudEvent[Any]) -> list[Output]:
        calls.append("last")
        return [fact(event, "in_sequence")]

    return registry, calls


@pytest.mark.parametrize("fail_once", [False, True], ids=["waits", "waits-then-retried"])
async def test_a_handler_that_waits_goes_on_under_the_loop_and_the_order_holds(fail_once: bool) -> None:
    """Handlers are stepped without the event loop until one waits; from there the rest goes on under
    it, in registration order, with the same retries, and the records around it are not held up."""
    registry, calls = waiting_registry(fail_once)
    p = processor(registry, attempts=3)
    values = [orjson.dumps(event_dict(EventType.LEAD_CREATED)) for _ in range(3)]
    out = await p.process_batch([record(v, offset=n) for n, v in enumerate(values)])
    outcomes = [msgspec.json.decode(outs[0].value or b"", type=Outcome) for outs in out]
    assert [o.status for o in outcomes] == ["processed"] * 3
    assert [o.position.offset for o in outcomes] == [0, 1, 2]
    stages = [[f.stage for f in o.facts if isinstance(f, FunnelFact)] for o in outcomes]
    assert stages == [["created", "contacted", "in_sequence"]] * 3
    reports = [(r.handler, r.attempts) for r in outcomes[0].handlers]
    assert reports == [("first", 1), ("waits", 2 if fail_once else 1), ("last", 1)]
    first_record = ["first", "waits", *(["waits"] if fail_once else []), "last"]
    assert calls[: len(first_record)] == first_record
