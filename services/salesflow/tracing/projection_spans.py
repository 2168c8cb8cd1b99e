"""The projection's spans: a ``write`` span per batch written, linked to the events it wrote.

Outcome and dead-letter records carry the worker's ``send`` context as their ``traceparent`` header,
so each sampled event's trace ends with the write of its row. Pending rows (from the source topics)
and rejected records take part in the batch span without a context of their own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from salesflow.tracing import conventions as c
from salesflow.tracing import propagation, state
from salesflow.tracing.fan_out import Member, fan_out


def trace_written(tracer: Any, items: Sequence[Any], rows: dict[str, int], started_ns: int) -> None:
    """Spans for one written part of a batch (``items``: the projection's items, each with its
    ``record``); ``rows``: rows written per table."""
    members = []
    for item in items:
        context, invalid = propagation.from_headers(item.record.headers)
        if invalid and state.COUNT_INVALID is not None:
            state.COUNT_INVALID()
        attributes: dict[str, Any] = {c.SYSTEM: "postgresql", c.DESTINATION: item.record.topic}
        if getattr(item, "event_id", None) is not None:
            attributes[c.EVENT_ID] = str(item.event_id)
        if getattr(item, "tenant_id", None) is not None:
            attributes[c.TENANT] = item.tenant_id
        reason = getattr(item, "reason", None)
        if reason is not None:  # a record kept aside in rejected_records
            attributes["salesflow.projection.rejected"] = str(getattr(reason, "value", reason))
        members.append(Member(context, attributes))
    fan_out(
        tracer,
        "projection write",
        SpanKind.CLIENT,
        members,
        started_ns=started_ns,
        ended_ns=time.time_ns(),
        attributes={
            "db.system.name": "postgresql",
            c.BATCH_COUNT: len(items),
            **{f"{c.ROWS}.{table}": count for table, count in rows.items()},
        },
    )
