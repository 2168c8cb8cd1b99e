"""The producer side: a ``create`` span per published event, whose context the event carries.

Uses the global tracer provider: the producing service's own (a CRM service configures its
OpenTelemetry as it likes) or ours. Free when the process never loaded OpenTelemetry: then no span
can be current, and nothing is carried.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from salesflow.tracing import conventions as c
from salesflow.tracing.propagation import Carrier, carrier_of, current_carrier

INSTRUMENTATION = "salesflow.outbox"


@contextmanager
def create_span(topic: str, event_id: str, event_type: str, tenant_id: str) -> Iterator[Carrier]:
    """A ``create <topic>`` span (kind PRODUCER) under the current one; yields its context to carry
    (the current context where the provider records nothing, {} where there is none)."""
    if "opentelemetry.trace" not in sys.modules:
        yield {}
        return
    from opentelemetry import trace

    tracer = trace.get_tracer(INSTRUMENTATION)
    attributes = {
        c.SYSTEM: c.KAFKA,
        c.OPERATION_TYPE: "create",
        c.DESTINATION: topic,
        c.MESSAGE_ID: event_id,
        c.EVENT_ID: event_id,
        c.EVENT_TYPE: event_type,
        c.TENANT: tenant_id,
    }
    with tracer.start_as_current_span(f"create {topic}", kind=trace.SpanKind.PRODUCER, attributes=attributes) as span:
        yield carrier_of(span) if span.get_span_context().is_valid else current_carrier()


@contextmanager
def replay_span(topic: str, event_id: str, original: Carrier) -> Iterator[Carrier]:
    """A ``send <topic>`` span for a replayed record, under the current span (the replay's request or
    command) and linked to the original's context (``original``); yields the carrier for the replayed
    record's ``traceparent`` header, {} where nothing is traced."""
    if "opentelemetry.trace" not in sys.modules:
        yield {}
        return
    from opentelemetry import trace

    from salesflow.tracing.propagation import extract

    context, _ = extract(original.get("traceparent"), original.get("tracestate"))
    links = [] if context is None else [trace.Link(trace.get_current_span(context).get_span_context())]
    attributes: dict[str, Any] = {
        c.SYSTEM: c.KAFKA,
        c.OPERATION_TYPE: "send",
        c.DESTINATION: topic,
        c.EVENT_ID: event_id,
        c.REPLAY: True,
    }
    tracer = trace.get_tracer(INSTRUMENTATION)
    with tracer.start_as_current_span(
        f"send {topic}", kind=trace.SpanKind.PRODUCER, links=links, attributes=attributes
    ) as span:
        yield carrier_of(span) if span.get_span_context().is_valid else {}
