"""The pure parts of tracing: which events skip the SDK (the sampling gate), and a Jaeger trace drawn
as a text tree."""

from __future__ import annotations

from typing import Any

import pytest

from salesflow.domain.events import EventType
from salesflow.domain.records import RecordIn
from salesflow.domain.topics import Topics
from salesflow.tracing.gate import skips_tracing, unsampled
from salesflow.tracing.render import render

TOPICS = Topics()
FOREIGN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def record(value: bytes, headers: tuple[tuple[str, bytes], ...] = ()) -> RecordIn:
    return RecordIn(TOPICS.source(EventType.LEAD_CREATED), 0, 5, None, b"acme:l-1", value, headers)


UNSAMPLED = FOREIGN[:-2] + "00"


@pytest.mark.parametrize(
    ("extensions", "headers", "batch_sampled", "skips"),
    [
        ({"traceparent": UNSAMPLED}, (), True, True),  # the producer did not sample it
        ({"traceparent": FOREIGN}, (), False, False),  # the producer sampled it: traced
        ({}, (), False, True),  # no context, the batch not sampled
        ({}, (), True, False),  # no context, the batch sampled: a child of its span
        ({"traceparent": "garbage"}, (), False, False),  # malformed: validated and counted the traced way
        ({"traceparent": UNSAMPLED + "-x"}, (), False, False),  # the right shape, too long
        ({"traceparent": UNSAMPLED.upper()}, (), False, False),  # upper-case hex is not W3C
        ({"traceparent": "00-" + "0" * 32 + UNSAMPLED[35:]}, (), False, False),  # an all-zero trace id
        ({"traceparent": 42}, (), False, False),  # not a string
        ({"traceparent": UNSAMPLED}, (("traceparent", b"x"),), False, False),  # a replay's own context
    ],
)
def test_the_gate_skips_only_events_that_cannot_have_a_span(
    extensions: dict[str, Any], headers: tuple[tuple[str, bytes], ...], batch_sampled: bool, skips: bool
) -> None:
    assert skips_tracing(record(b"{}", headers), extensions, batch_sampled) is skips


@pytest.mark.parametrize("flags", ["01", "03", "ff", "0f"])
def test_any_sampled_flag_is_traced(flags: str) -> None:
    assert not unsampled((FOREIGN[:-2] + flags).encode())
    assert unsampled((FOREIGN[:-2] + "02").encode())


def test_a_jaeger_trace_renders_as_a_tree() -> None:
    def span(span_id: str, name: str, parent: str | None, start: int, **tags: str) -> dict[str, Any]:
        references = [{"refType": "CHILD_OF", "spanID": parent}] if parent else []
        return {
            "spanID": span_id,
            "operationName": name,
            "references": references,
            "startTime": start,
            "duration": 1500,
            "processID": "p1",
            "tags": [{"key": k.replace("_", "."), "value": v} for k, v in tags.items()],
        }

    found = {
        "spans": [
            span("b", "process t", "a", 2000, salesflow_status="processed"),
            span("a", "POST /api/leads", None, 1000),
            span("c", "handler x", "b", 2500),
        ],
        "processes": {"p1": {"serviceName": "svc"}},
    }
    assert render(found).splitlines() == [
        "POST /api/leads  (svc, +0.0 ms, 1.50 ms)",
        "└─ process t  (svc, +1.0 ms, 1.50 ms)  [status=processed]",
        "   └─ handler x  (svc, +1.5 ms, 1.50 ms)",
    ]
