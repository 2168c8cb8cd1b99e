"""Spans for work done on many events at once (the relay's send, the projection's write).

One span for the batch, linked to every event's context (the messaging conventions' batch form), and,
for each event whose trace is sampled, a span of the same name under that event's context, linked
to the batch span: so the batch step shows in each sampled event's own trace tree, and costs
nothing for the events whose trace is not recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

ROOT = otel_context.Context()
MAX_LINKS = 128  # the SDK's default span link limit: more are dropped anyway


@dataclass
class Member:
    """One event in the batch: its context (None: it had none) and its span's attributes."""

    context: Any
    attributes: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


def fan_out(
    tracer: Any,
    name: str,
    kind: SpanKind,
    members: Sequence[Member],
    *,
    started_ns: int,
    ended_ns: int,
    attributes: Mapping[str, Any],
) -> None:
    """Record the batch span and the sampled members' spans, from ``started_ns`` to ``ended_ns``."""
    contexts = [trace.get_current_span(m.context).get_span_context() for m in members if m.context is not None]
    batch = tracer.start_span(
        name,
        context=ROOT,
        kind=kind,
        links=[Link(sc) for sc in contexts[:MAX_LINKS]],
        attributes=attributes,
        start_time=started_ns,
    )
    link = [Link(batch.get_span_context())]
    for member in members:
        if member.context is None or not trace.get_current_span(member.context).get_span_context().trace_flags.sampled:
            continue
        span = tracer.start_span(
            name, context=member.context, kind=kind, links=link, attributes=member.attributes, start_time=started_ns
        )
        if member.error is not None:
            span.set_status(Status(StatusCode.ERROR, member.error))
        span.end(ended_ns)
    batch.end(ended_ns)
