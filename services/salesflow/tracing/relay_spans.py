"""The outbox relay's spans: a ``send`` per batch of rows, under each sampled event's ``create`` span.

The context itself needs no carrying: it is in the row's value (the ``traceparent`` extension), or, for
a replay queued by the API, in the row's ``traceparent`` header.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.trace import SpanKind

from salesflow.tracing import conventions as c
from salesflow.tracing import propagation
from salesflow.tracing.fan_out import Member, fan_out


def relay_spans(
    tracer: Any, rows: Sequence[Any], acknowledged: set[int], *, started_ns: int, ended_ns: int, error: str | None
) -> None:
    """Spans for one published batch; ``rows`` are ``(id, topic, key, value, headers as JSON text, ...)``."""
    members = []
    for row in rows:
        context = _context(row)
        sent = row[0] in acknowledged
        attributes = {
            c.SYSTEM: c.KAFKA,
            c.OPERATION_TYPE: "send",
            c.DESTINATION: row[1],
            c.STATUS: "acknowledged" if sent else "not acknowledged",
        }
        members.append(Member(context, attributes, None if sent else (error or "not acknowledged")))
    fan_out(
        tracer,
        "send outbox",
        SpanKind.PRODUCER,
        members,
        started_ns=started_ns,
        ended_ns=ended_ns,
        attributes={c.SYSTEM: c.KAFKA, c.OPERATION_TYPE: "send", c.BATCH_COUNT: len(rows)},
    )


def trace_sent(tracer: Any, rows: Sequence[Any], result: Any, started_ns: int) -> None:
    """``relay_spans`` for a ``publisher.BatchResult``, ending now."""
    relay_spans(
        tracer, rows, set(result.acknowledged), started_ns=started_ns, ended_ns=time.time_ns(), error=result.error
    )


def _context(row: Any) -> Any:
    """A row's context: its ``traceparent`` header (a replay's), else its event's extension."""
    headers = _parsed(row[4])
    if isinstance(headers, list):
        found = {str(h[0]): h[1] for h in headers if isinstance(h, list) and len(h) == 2}
        if isinstance(found.get("traceparent"), str):
            return propagation.extract(found["traceparent"], found.get("tracestate"))[0]
    envelope = _parsed(row[3])
    return propagation.from_extensions(envelope)[0] if isinstance(envelope, dict) else None


def _parsed(value: Any) -> Any:
    try:
        return orjson.loads(value) if value else None
    except (orjson.JSONDecodeError, TypeError):
        return None
