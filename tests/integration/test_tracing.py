"""One trace from a service's request to the event's row, on the real stack: the request span, the
outbox (``create``), the relay (``send outbox``), the worker (``process``, handlers, ``send``) and the
projection (``projection write``), each process exporting over OTLP/HTTP to one receiver.

Why a receiver of our own and not Jaeger: Jaeger builds from its Go module in about 4.5 minutes here
(30 s fetch, 243 s build on 2 shared cores), over the 3 minutes this suite may spend on it, and CI's
machine has no Go of ours to count on. The receiver decodes the same OTLP protobuf Jaeger would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from salesflow import bootstrap
from salesflow.api import ApiSettings, create_app
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics
from salesflow.outbox import OutboxEventBus
from salesflow.producer.typed_events import LeadCreatedEvent
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import wait_for
from tests.infra import Endpoints
from tests.integration.api_kit import running_relay
from tests.integration.test_outbox_kit import Relays, service_db
from tests.otlp_receiver import ReceivedSpan, Receiver, global_provider, otlp_receiver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as found:
        yield found


@pytest.fixture
def traced_children(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every service started from here on exports its spans to ``receiver`` (the standard variables)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.setenv("SALESFLOW_LOG_FORMAT", "json")


@pytest.fixture
def request_tracer(receiver: Receiver) -> trace.Tracer:
    """The test plays the CRM service: its spans go to the same receiver."""
    global_provider().add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
    )
    return trace.get_tracer("crm.leads")


async def statuses(engine: AsyncEngine, ids: list[UUID]) -> dict[UUID, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, status FROM events WHERE id = ANY(:ids)"), {"ids": ids})
        return {row.id: row.status for row in rows}


def by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name!r}: {[s.name for s in spans]}"
    return found[0]


async def test_one_trace_from_the_request_to_the_row(
    settings_factory: SettingsFactory,
    service_factory: Any,
    endpoints: Endpoints,
    engine: AsyncEngine,
    receiver: Receiver,
    traced_children: None,
    request_tracer: trace.Tracer,
    tmp_path: Any,
) -> None:
    settings = settings_factory(handler_modules="tests.integration.handler_plugins.failing_lead")
    await create_topics(settings)
    service_factory("worker", settings)
    service_factory("projection", settings)
    relays = Relays(tmp_path)
    ok = LeadCreatedEvent(tenant_id="acme", lead_id="lead-traced", source="api")
    failing = LeadCreatedEvent(tenant_id="acme", lead_id="fail-1", source="api")
    async with service_db(endpoints) as (outbox_url, service_engine):
        relays.start(settings, outbox_url)
        try:
            with request_tracer.start_as_current_span("POST /leads", kind=trace.SpanKind.SERVER) as request:
                async with async_sessionmaker(service_engine)() as session, session.begin():
                    bus = OutboxEventBus(session, settings.topics)
                    await bus.publish(ok, request_id="req-1")
                    await bus.publish(failing, request_id="req-1")
            bad = await _send_bad_contexts(settings)

            async def final() -> dict[UUID, str] | None:
                found = await statuses(engine, [ok.event_id, failing.event_id, *bad])
                return found if len(found) == 2 + len(bad) and "pending" not in found.values() else None

            found = await wait_for(final, timeout=120, what="every event to be final")
        finally:
            relays.stop_all()
    assert found[ok.event_id] == "processed" and found[failing.event_id] == "failed"
    garbage, too_long, nul = bad
    assert (found[garbage], found[too_long], found[nul]) == ("processed", "processed", "dead_lettered")

    trace_id = format(request.get_span_context().trace_id, "032x")

    async def whole_trace() -> list[ReceivedSpan] | None:
        spans = receiver.of_trace(trace_id)
        writes = [s for s in spans if s.name == "projection write"]
        return spans if len(writes) >= 2 else None  # both events' rows written

    spans = await wait_for(whole_trace, timeout=60, what="the projection's spans in the trace")
    _assert_connected(spans, request.get_span_context().span_id, str(ok.event_id), str(failing.event_id))
    _assert_fresh_traces(receiver, {str(garbage), str(too_long)})
    create = next(
        s for s in spans if s.name.startswith("create ") and s.attributes["cloudevents.event_id"] == str(ok.event_id)
    )
    await _assert_api_replay_is_its_own_trace_linked_to_the_original(settings, engine, receiver, ok.event_id, create)


async def _assert_api_replay_is_its_own_trace_linked_to_the_original(
    settings: Settings, engine: AsyncEngine, receiver: Receiver, event_id: UUID, original: ReceivedSpan
) -> None:
    """``POST /api/events/{id}/replay``: FastAPI's request span, the replay's ``send`` span under it, and
    the worker's span of the replayed record under that, linked to the original ``create`` span."""
    token = "acme-token-0123456789"
    app = create_app(settings, ApiSettings(tokens={"acme": token}), engine=engine, registry=CollectorRegistry())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    async with app.router.lifespan_context(app), client, running_relay(settings):
        answer = await client.post(f"/api/events/{event_id}/replay", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 202, answer.text

        async def replayed() -> bool:
            async with engine.connect() as conn:
                found = await conn.execute(text("SELECT replay_count FROM events WHERE id = :id"), {"id": event_id})
                return bool(found.scalar_one() >= 1)

        await wait_for(replayed, timeout=60, what="the replay to be processed")
    [request] = [s for s in receiver.spans if s.name == "POST /api/events/{event_id}/replay"]

    async def worker_span() -> ReceivedSpan | None:
        return next((s for s in receiver.of_trace(request.trace_id) if s.name.startswith("process ")), None)

    process = await wait_for(worker_span, timeout=30, what="the replayed record's span")
    in_trace = {s.span_id: s for s in receiver.of_trace(request.trace_id)}
    send = in_trace[process.parent_id]
    above = [send.parent_id]  # the replay's span hangs under the request (through FastAPI's endpoint span)
    while above[-1] in in_trace:
        above.append(in_trace[above[-1]].parent_id)
    assert send.name.startswith("send ") and request.span_id in above
    assert (original.trace_id, original.span_id) in process.links
    assert process.attributes["salesflow.replay"] is True


def _assert_connected(spans: list[ReceivedSpan], request_id: int, ok_id: str, failing_id: str) -> None:
    ids = {s.span_id: s for s in spans}
    request = ids[format(request_id, "016x")]
    creates = [s for s in spans if s.name.startswith("create ")]
    assert {s.parent_id for s in creates} == {request.span_id}
    for event_id in (ok_id, failing_id):
        process = next(
            s for s in spans if s.name.startswith("process ") and s.attributes.get("cloudevents.event_id") == event_id
        )
        create = ids[process.parent_id]
        assert create.name.startswith("create ") and create.attributes["cloudevents.event_id"] == event_id
        relay = next(s for s in spans if s.name == "send outbox" and s.parent_id == create.span_id)
        assert relay.service == "salesflow-outbox-relay"
        handlers = {s.name: s for s in spans if s.parent_id == process.span_id and s.name.startswith("handler ")}
        assert "handler crm.sync_lead" in handlers and len(handlers) >= 2  # ours and the built-ins
        send = next(s for s in spans if s.parent_id == process.span_id and s.name.startswith("send "))
        write = next(s for s in spans if s.name == "projection write" and s.parent_id == send.span_id)
        assert (process.service, write.service) == ("salesflow-worker", "salesflow-projection")
        assert write.attributes["cloudevents.event_id"] == event_id
    failed = next(s for s in spans if s.name == "handler crm.sync_lead" and s.status == 2)
    assert "exception" in failed.events
    assert sum(1 for s in spans if s.name == "handler crm.sync_lead" and s.status != 2) == 1


def _assert_fresh_traces(receiver: Receiver, bad_ids: set[str]) -> None:
    processed = [
        s
        for s in receiver.spans
        if s.name.startswith("process ") and s.attributes.get("cloudevents.event_id") in bad_ids
    ]
    assert len(processed) == 2
    assert all(s.parent_id == "" and s.attributes.get("salesflow.trace_context.invalid") for s in processed)


async def _send_bad_contexts(settings: Settings) -> list[UUID]:
    """Three structured records straight to the source topic: a garbage ``traceparent``, one of the
    right shape but too long, one with a NUL."""
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    contexts = ["garbage", good + "-00", good[:20] + "\x00" + good[21:]]
    events = [{**event_dict(EventType.LEAD_CREATED), "traceparent": context} for context in contexts]
    async with bootstrap.event_producer(settings) as producer:
        for event in events:
            await (await producer.send_event(event))
    return [UUID(e["id"]) for e in events]
