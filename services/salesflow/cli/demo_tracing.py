"""``salesflow demo --tracing``: the demo with a local Jaeger, and a CRM service's requests through
the outbox, so one trace runs from the request to the event's row.

What it adds to the demo: Jaeger started (``devstack.jaeger``, built once) unless
``OTEL_EXPORTER_OTLP_ENDPOINT`` already names a backend; the ``OTEL_*`` variables the worker, the
projection and the relay it spawns inherit; the outbox table in the demo's database and a relay;
a few ``POST /api/leads`` requests of a pretend CRM service (this process) that each publish a
``lead.created`` through ``OutboxEventBus``; and, at the end, where to look and one trace as a tree.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from salesflow.cli.common import console

if TYPE_CHECKING:  # loaded when the demo runs, not for `salesflow --help`
    from salesflow.settings import Settings

REQUESTS = 3


@dataclass
class TracingDemo:
    ui_url: str | None
    relay: subprocess.Popen[bytes]
    traces: list[tuple[str, UUID]] = field(default_factory=list)  # (trace id, event id) per request


def start(config: Settings, logs: Path) -> TracingDemo:
    """Jaeger, the ``OTEL_*`` environment, the outbox table and a relay; this process's tracer."""
    from salesflow import bootstrap
    from salesflow.outbox.migrate import upgrade as migrate_outbox

    ui_url = None
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from salesflow.devstack import jaeger, stack

        cfg = stack.jaeger_config()
        jaeger.start(cfg, echo=lambda m: console.print(m))
        os.environ.update(jaeger.otel_env(cfg))
        ui_url = cfg.ui_url
    os.environ.setdefault("OTEL_BSP_SCHEDULE_DELAY", "500")  # spans reach the backend within a second
    bootstrap.start_tracing("crm-leads-service")
    migrate_outbox(config.database_url)
    env = {**os.environ, "SALESFLOW_OUTBOX_METRICS_PORT": "0"}
    log = open(logs / "relay.log", "ab")  # noqa: SIM115 - lives as long as the child process
    relay = subprocess.Popen(
        [sys.executable, "-m", "salesflow.cli.main", "outbox", "relay"], stdout=log, stderr=log, env=env
    )
    return TracingDemo(ui_url, relay)


async def publish_requests(demo: TracingDemo, config: Settings) -> list[UUID]:
    """``REQUESTS`` requests of the pretend CRM service, each a ``lead.created`` through the outbox."""
    from opentelemetry import trace
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from salesflow import bootstrap
    from salesflow.outbox import OutboxEventBus
    from salesflow.producer.typed_events import LeadCreatedEvent

    tracer = trace.get_tracer("crm.leads")
    async with bootstrap.database(config) as engine:
        for index in range(REQUESTS):
            event = LeadCreatedEvent(
                tenant_id="acme", lead_id=f"lead-traced-{index}", source="web_form", autopilot=index == 0
            )
            with tracer.start_as_current_span("POST /api/leads", kind=trace.SpanKind.SERVER) as span:
                async with async_sessionmaker(engine)() as session, session.begin():
                    await OutboxEventBus(session, config.topics).publish(event, request_id=f"demo-{index}")
            demo.traces.append((format(span.get_span_context().trace_id, "032x"), event.event_id))
    console.print(f"{REQUESTS} traced requests published through the outbox (relay log: relay.log)")
    return [event_id for _, event_id in demo.traces]


async def show(demo: TracingDemo) -> None:
    """Where to look, and the first request's trace as a tree once the projection's span is in."""
    from opentelemetry import trace

    from salesflow.tracing.render import fetch_trace, render

    provider = trace.get_tracer_provider()
    getattr(provider, "force_flush", lambda: None)()
    if demo.ui_url is None:
        console.print(f"traces went to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}; trace ids:")
        for trace_id, _ in demo.traces:
            console.print(f"  {trace_id}")
        return
    # A Jaeger built from its Go module serves a placeholder page for the UI (the UI is an npm build of its
    # own); its query API is whole: the trace as JSON, or as a tree with `salesflow dev trace`.
    console.print(f"\ntraces in the local Jaeger, query API {demo.ui_url}/api/traces/<trace id>; these requests:")
    for trace_id, event_id in demo.traces:
        console.print(f"  salesflow dev trace {trace_id}   (event {event_id})", soft_wrap=True)
    trace_id = demo.traces[0][0]
    deadline = time.monotonic() + 30
    found = None
    while time.monotonic() < deadline:
        found = fetch_trace(demo.ui_url, trace_id)
        if found and any(s["operationName"] == "projection write" for s in found["spans"]):
            break
        await asyncio.sleep(1)
    if found:
        console.print(f"\ntrace {trace_id}, from Jaeger:", highlight=False)
        console.print(render(found), highlight=False, markup=False, soft_wrap=True)


def stop(demo: TracingDemo) -> None:
    demo.relay.terminate()
    try:
        demo.relay.wait(timeout=30)
    except subprocess.TimeoutExpired:
        demo.relay.kill()
