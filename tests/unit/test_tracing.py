"""Trace context through the pipeline, with the SDK's in-memory exporter: parents and links of the
producer's, the worker's and the projection's spans, for structured, binary and replayed events, and
what a bad trace context does (never more than a fresh trace and a count)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.openmetrics.exposition import generate_latest

from salesflow.api import ApiSettings, create_app
from salesflow.domain.events import EventType
from salesflow.domain.records import REPLAY_HEADER, RecordIn
from salesflow.domain.topics import Topics
from salesflow.errors import DeadLetterReason
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers import HandlerRegistry
from salesflow.metrics import PipelineMetrics
from salesflow.outbox.bus import outbox_row, traced_row
from salesflow.processor.core import EventProcessor
from salesflow.producer.typed_events import LeadCreatedEvent
from salesflow.replay.republish import original_trace, replay_headers
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from salesflow.tracing import propagation, setup
from salesflow.tracing.projection_spans import trace_written
from salesflow.tracing.relay_spans import relay_spans
from tests.otlp_receiver import global_provider

TOPICS = Topics()
EXPORTER = InMemorySpanExporter()
PROVIDER = global_provider()  # the global one, for the producer side (the bus, the replayer)
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
FOREIGN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"  # a producer's own context


@pytest.fixture(autouse=True)
def tracing_on() -> Iterator[PipelineMetrics]:
    metrics = PipelineMetrics()
    setup.use(PROVIDER, metrics.registry)
    EXPORTER.clear()
    yield metrics
    setup.disable()


def processor(metrics: PipelineMetrics, registry: HandlerRegistry | None = None) -> EventProcessor:
    if registry is None:
        registry = HandlerRegistry()
        registry.register(EventType.LEAD_CREATED, name="noted")(_noted)
    return EventProcessor(
        registry=registry,
        metrics=metrics,
        topics=TOPICS,
        group="g",
        max_event_bytes=64 * 1024,
        policy=RetryPolicy(max_attempts=1, backoff_seconds=0),
    )


async def _noted(event: Any) -> None:
    return None


def record(value: bytes, headers: tuple[tuple[str, bytes], ...] = (), offset: int = 5) -> RecordIn:
    return RecordIn(TOPICS.source(EventType.LEAD_CREATED), 0, offset, 1_700_000_000_000, b"acme:l-1", value, headers)


def lead(**extensions: str) -> bytes:
    """A structured ``lead.created`` record value with these extension attributes."""
    return orjson.dumps({**event_dict(EventType.LEAD_CREATED), **extensions})


def spans(name: str) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if s.name == name]


def one(name: str) -> ReadableSpan:
    [found] = spans(name)
    return found


def ctx_of(traceparent: str) -> tuple[int, int]:
    _, trace_id, span_id, _ = traceparent.split("-")
    return int(trace_id, 16), int(span_id, 16)


def header(out: Any, name: str) -> str:
    found: bytes = dict(out.headers)[name]
    return found.decode()


async def test_structured_event_one_trace_from_request_to_handler_and_outcome(tracing_on: PipelineMetrics) -> None:
    event = LeadCreatedEvent(tenant_id="acme", lead_id="l-1", source="api")
    with (
        trace.get_tracer("test").start_as_current_span("POST /leads") as request,
        traced_row(event, TOPICS, None) as row,
    ):
        pass
    envelope = orjson.loads(row.value)
    create = one(f"create {row.topic}")
    assert create.parent is not None and create.parent.span_id == request.get_span_context().span_id
    assert ctx_of(envelope["traceparent"]) == (create.context.trace_id, create.context.span_id)

    [out] = await processor(tracing_on).process_batch([record(row.value)])
    batch, event_span = one("process"), one(f"process {TOPICS.source(EventType.LEAD_CREATED)}")
    handler, send = one("handler noted"), one(f"send {TOPICS.outcomes}")
    assert event_span.parent is not None and event_span.parent.span_id == create.context.span_id
    assert event_span.context.trace_id == request.get_span_context().trace_id
    assert [link.context.span_id for link in batch.links] == [create.context.span_id]
    assert [link.context.span_id for link in event_span.links] == [batch.context.span_id]
    assert handler.parent is not None and handler.parent.span_id == event_span.context.span_id
    assert send.parent is not None and send.parent.span_id == event_span.context.span_id
    assert event_span.attributes is not None
    assert event_span.attributes["cloudevents.event_id"] == str(event.event_id)
    assert (event_span.attributes["salesflow.tenant_id"], event_span.attributes["salesflow.status"]) == (
        "acme",
        "processed",
    )
    assert "data" not in str(event_span.attributes)  # no payload on a span
    assert ctx_of(header(out[0], "traceparent"))[1] == send.context.span_id


async def test_a_producer_that_sets_its_own_context_keeps_it() -> None:
    envelope = propagation.into_envelope(
        {"id": "x", "traceparent": FOREIGN}, {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    )
    assert envelope["traceparent"] == FOREIGN
    headers = propagation.into_binary_headers([("ce_traceparent", FOREIGN.encode())], {"traceparent": "other"})
    assert headers == [("ce_traceparent", FOREIGN.encode())]


async def test_binary_mode_event_is_processed_under_its_ce_traceparent(tracing_on: PipelineMetrics) -> None:
    raw = event_dict(EventType.LEAD_CREATED)
    attributes = [(f"ce_{k}", str(v).encode()) for k, v in raw.items() if k != "data"]
    headers = (*attributes, ("ce_traceparent", FOREIGN.encode()), ("content-type", b"application/json"))
    [out] = await processor(tracing_on).process_batch([record(orjson.dumps(raw["data"]), headers)])
    event_span = one(f"process {TOPICS.source(EventType.LEAD_CREATED)}")
    assert (event_span.context.trace_id, event_span.parent.span_id if event_span.parent else 0) == ctx_of(FOREIGN)
    assert dict(out[0].headers)[b"salesflow.status".decode()] == b"processed"


async def test_a_replayed_record_runs_under_the_replay_and_links_to_the_original(tracing_on: PipelineMetrics) -> None:
    original = record(lead(traceparent=FOREIGN))
    assert original_trace(original) == {"traceparent": FOREIGN}
    with trace.get_tracer("test").start_as_current_span("POST /api/events/x/replay") as request:
        carrier = propagation.carrier_of(request)
    replayed = msgspec.structs.replace(original, offset=9, headers=tuple(replay_headers(original, carrier)))
    assert dict(replayed.headers)[REPLAY_HEADER] == b"salesflow.leads.v1:0:5"
    await processor(tracing_on).process_batch([replayed])
    event_span = one(f"process {TOPICS.source(EventType.LEAD_CREATED)}")
    assert event_span.parent is not None and event_span.parent.span_id == request.get_span_context().span_id
    originals = [link for link in event_span.links if (link.attributes or {}).get("salesflow.link") == "original"]
    assert [(link.context.trace_id, link.context.span_id) for link in originals] == [ctx_of(FOREIGN)]
    assert event_span.attributes is not None and event_span.attributes["salesflow.replay"] is True


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        FOREIGN + "-and-more",  # the right shape, too long for version 00
        "00-" + "f" * 4000,
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # an all-zero trace id
    ],
)
async def test_a_malformed_traceparent_costs_a_fresh_trace_and_a_count_never_the_event(
    tracing_on: PipelineMetrics, bad: str
) -> None:
    [out] = await processor(tracing_on).process_batch([record(lead(traceparent=bad))])
    assert dict(out[0].headers)["salesflow.status"] == b"processed"
    event_span = one(f"process {TOPICS.source(EventType.LEAD_CREATED)}")
    assert event_span.parent is None  # the root of a fresh trace
    assert event_span.attributes is not None and event_span.attributes["salesflow.trace_context.invalid"] is True
    assert tracing_on.registry.get_sample_value("salesflow_trace_context_invalid_total") == 1.0


async def test_a_nul_in_the_traceparent_is_dead_lettered_as_any_nul(tracing_on: PipelineMetrics) -> None:
    value = lead(traceparent=FOREIGN[:10] + "\x00" + FOREIGN[11:])
    [out] = await processor(tracing_on).process_batch([record(value)])
    assert [o.topic for o in out] == [TOPICS.deadletter]
    event_span = one(f"process {TOPICS.source(EventType.LEAD_CREATED)}")
    assert event_span.attributes is not None
    assert event_span.attributes["salesflow.dead_letter.reason"] == DeadLetterReason.INVALID_FIELD.value
    assert event_span.status.status_code == trace.StatusCode.ERROR
    assert ctx_of(header(out[0], "traceparent"))[0] == event_span.context.trace_id  # the context goes on


async def test_a_failed_handler_span_has_the_error_status_and_the_exception(tracing_on: PipelineMetrics) -> None:
    registry, current = HandlerRegistry(), []

    @registry.register(EventType.LEAD_CREATED, name="broken")
    async def broken(event: Any) -> None:
        current.append(trace.get_current_span().get_span_context().span_id)  # what its own logs would carry
        raise RuntimeError("the CRM is down")

    [out] = await processor(tracing_on, registry).process_batch([record(lead())])
    assert dict(out[0].headers)["salesflow.status"] == b"failed"
    handler = one("handler broken")
    assert handler.status.status_code == trace.StatusCode.ERROR and current == [handler.context.span_id]
    [exception] = [e for e in handler.events if e.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "RuntimeError"
    assert one(f"process {TOPICS.source(EventType.LEAD_CREATED)}").status.status_code == trace.StatusCode.ERROR


async def test_sampled_events_leave_exemplars_on_freshness_and_handler_duration(tracing_on: PipelineMetrics) -> None:
    await processor(tracing_on).process_batch([record(lead())])
    event_span = one(f"process {TOPICS.source(EventType.LEAD_CREATED)}")
    exposition = generate_latest(tracing_on.registry).decode()  # type: ignore[no-untyped-call]
    trace_id = format(event_span.context.trace_id, "032x")
    freshness = [
        line for line in exposition.splitlines() if "event_freshness_seconds_bucket" in line and trace_id in line
    ]
    durations = [
        line for line in exposition.splitlines() if "handler_duration_seconds_bucket" in line and trace_id in line
    ]
    assert len(freshness) == 1 and len(durations) == 1


async def test_the_projection_write_hangs_under_each_sampled_outcome(tracing_on: PipelineMetrics) -> None:
    [out] = await processor(tracing_on).process_batch([record(lead())])
    send = one(f"send {TOPICS.outcomes}")
    outcome = RecordIn(TOPICS.outcomes, 0, 1, None, out[0].key, out[0].value, tuple(out[0].headers))
    pending = record(b"{}")

    class Item:
        def __init__(self, rec: RecordIn) -> None:
            self.record, self.event_id, self.tenant_id = rec, None, "acme"

    trace_written(trace.get_tracer("salesflow"), [Item(outcome), Item(pending)], {"events": 2}, 0)
    writes = spans("projection write")
    batch = next(s for s in writes if s.parent is None)
    [child] = [s for s in writes if s.parent is not None]
    assert child.parent is not None and child.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in batch.links] == [send.context.span_id]
    assert [link.context.span_id for link in child.links] == [batch.context.span_id]


async def test_without_a_tracer_nothing_is_added() -> None:
    setup.disable()
    [out] = await processor(PipelineMetrics()).process_batch([record(lead())])
    assert "traceparent" not in dict(out[0].headers)
    assert EXPORTER.get_finished_spans() == ()
    row = outbox_row(LeadCreatedEvent(tenant_id="acme", lead_id="l-1", source="api"), TOPICS)
    assert "traceparent" not in orjson.loads(row.value)  # no current span: nothing to carry


def test_tracing_is_off_unless_an_exporter_is_configured() -> None:
    assert not setup.enabled({})
    assert not setup.enabled({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert not setup.enabled({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
    assert setup.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert setup.enabled({"OTEL_TRACES_EXPORTER": "otlp"})
    grpc = setup.exporter_from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert type(grpc).__module__.endswith("grpc.trace_exporter")
    with pytest.raises(ValueError, match="zipkin"):
        setup.exporter_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


async def test_an_api_request_is_one_server_span_under_the_callers_context() -> None:
    """FastAPI's own telemetry (0.163) makes the span, from the global provider ``bootstrap`` sets: one per
    request, not two (a middleware of ours beside it made a duplicate)."""
    app = create_app(Settings(), ApiSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        answer = await http.get("/healthz", headers={"traceparent": FOREIGN})
        refused = await http.get("/api/events/status/pending")  # no token: a 401, still one span
    assert answer.status_code == 200 and refused.status_code == 401
    health, pending = one("GET /healthz"), one("GET /api/events/status/pending")
    assert health.kind == trace.SpanKind.SERVER and health.attributes is not None
    assert (health.context.trace_id, health.parent.span_id if health.parent else 0) == ctx_of(FOREIGN)
    assert health.attributes["http.response.status_code"] == 200
    assert pending.parent is None and pending.attributes is not None
    assert pending.attributes["http.response.status_code"] == 401


async def test_the_relay_send_hangs_under_each_rows_context_a_replays_header_first() -> None:
    other = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    rows = [
        (1, "t", b"k", lead(traceparent=FOREIGN), '[["content-type", "application/cloudevents+json"]]'),
        (2, "t", b"k", lead(traceparent=FOREIGN), f'[["traceparent", "{other}"]]'),  # a replay queued by the API
        (3, "t", b"k", b"not json", "not json either"),
    ]
    relay_spans(trace.get_tracer("salesflow"), rows, {1, 2}, started_ns=1, ended_ns=2, error=None)
    sends = spans("send outbox")
    children = sorted((s.context.trace_id, s.parent.span_id) for s in sends if s.parent is not None)
    assert children == sorted([ctx_of(FOREIGN), ctx_of(other)])
    [batch] = [s for s in sends if s.parent is None]
    assert len(batch.links) == 2
