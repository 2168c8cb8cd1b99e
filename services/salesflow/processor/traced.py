"""The worker's batch, traced: what ``EventProcessor.process_batch`` does, with spans.

- a ``process`` span per batch (kind CONSUMER), linked to each event's producer context;
- a ``process <topic>`` span per record, child of the event's producer context (the ``traceparent``
  extension, either content mode; a record-level ``traceparent`` header, a replay's, wins), of the
  batch span when it has none, and the root of a fresh trace when it is malformed (counted in
  ``salesflow_trace_context_invalid``, never fatal); linked to the batch span. An event that will not
  be sampled goes the untraced way, no SDK call at all (``tracing.gate``);
- the handlers as children of the record's span (``handler_spans``);
- a ``send`` span (kind PRODUCER) for the outcome and the commands, whose context travels on as
  their ``traceparent`` header (the projection's spans hang under it), likewise for a dead letter.

Only loaded while tracing is on; ``process_batch`` checks ``state.TRACER`` once per batch.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import CloudEvent
from salesflow.domain.records import RecordIn, RecordOut
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent
from salesflow.processor.dispatch import DispatchResult, dispatch_now
from salesflow.processor.handler_spans import traced_dispatch_now
from salesflow.processor.tally import BatchTally
from salesflow.tracing import conventions as c
from salesflow.tracing import propagation, state
from salesflow.tracing.exemplars import exemplar_of
from salesflow.tracing.gate import skips_tracing

if TYPE_CHECKING:
    from salesflow.processor.core import EventProcessor

ROOT = otel_context.Context()  # an empty context: a span started in it begins a new trace


async def process_batch_traced(
    processor: EventProcessor, records: Sequence[RecordIn], tracer: Any
) -> list[list[RecordOut]]:
    """``process_batch`` with spans; the same outputs (plus ``traceparent`` headers) and metrics."""
    tally = BatchTally()
    batch = tracer.start_span(
        "process",
        context=ROOT,
        kind=SpanKind.CONSUMER,
        attributes={
            c.SYSTEM: c.KAFKA,
            c.OPERATION_TYPE: "process",
            c.CONSUMER_GROUP: processor.group,
            c.BATCH_COUNT: len(records),
        },
    )
    # With a parent-based sampler (the SDK's default), an event whose producer did not sample it is
    # not sampled here either: it skips the SDK altogether (the measured cost of tracing at 1%).
    parent_decides = isinstance(getattr(tracer, "sampler", None), ParentBased)
    batch_sampled = batch.is_recording()
    out: list[list[RecordOut]] = []
    for record in records:
        done = _process_one(processor, record, tally, tracer, batch, parent_decides, batch_sampled)
        out.append(done if isinstance(done, list) else await done)
    batch.end()
    tally.apply(processor.metrics, processor.metrics.child)
    return out


def _process_one(
    processor: EventProcessor,
    record: RecordIn,
    tally: BatchTally,
    tracer: Any,
    batch: Any,
    parent_decides: bool,
    batch_sampled: bool,
) -> list[RecordOut] | Awaitable[list[RecordOut]]:
    """As ``EventProcessor._process_one``: the outputs now, or an awaitable of them."""
    started = time.time_ns()
    tally.inc("events_consumed", record.topic)
    try:
        event = decode_event(record.value, record.headers, max_bytes=processor.max_event_bytes)
    except Exception as exc:
        span = _span(tracer, batch, record, None, started, parent_decides)
        if span is None:
            return processor._refused(record, exc, tally)
        return _refused(processor, record, exc, tally, tracer, span)
    if parent_decides and skips_tracing(record, event.extensions, batch_sampled):
        return _untraced(processor, record, event, tally)
    span = _span(tracer, batch, record, event, started, parent_decides)
    if span is None:
        return _untraced(processor, record, event, tally)
    return _traced(processor, record, event, tally, tracer, span)


async def _traced(
    processor: EventProcessor, record: RecordIn, event: CloudEvent[Any], tally: BatchTally, tracer: Any, span: Any
) -> list[RecordOut]:
    try:
        replay = processor.is_replay(record)
        span.set_attribute(c.REPLAY, replay)
        result = traced_dispatch_now(
            event,
            processor.registry,
            processor.policy,
            processor.metrics,
            replay=replay,
            tally=tally,
            tracer=tracer,
            event_span=span,
        )
        done = result if isinstance(result, DispatchResult) else await result
        with trace.use_span(span, end_on_exit=False):  # its log lines carry the trace and span ids
            outputs = processor._outputs(record, event, done, replay, tally)
    except Exception as exc:
        return _refused(processor, record, exc, tally, tracer, span)
    status = "failed" if done.failed else "processed"
    span.set_attribute(c.STATUS, status)
    if done.failed:
        span.set_status(Status(StatusCode.ERROR, done.error_message))
    if not replay:
        tally.take_exemplar("freshness", (event.type.value,), exemplar_of(span))
    sent = _send(tracer, span, outputs)
    span.end()
    return sent


def _untraced(
    processor: EventProcessor, record: RecordIn, event: CloudEvent[Any], tally: BatchTally
) -> list[RecordOut] | Awaitable[list[RecordOut]]:
    """An event whose trace is not sampled: what ``EventProcessor._process_one`` does once decoded."""
    try:
        replay = processor.is_replay(record)
        result = dispatch_now(
            event, processor.registry, processor.policy, processor.metrics, replay=replay, tally=tally
        )
        if not isinstance(result, DispatchResult):
            return processor._process_later(record, event, result, replay, tally)
        return processor._outputs(record, event, result, replay, tally)
    except Exception as exc:
        return processor._refused(record, exc, tally)


def _span(
    tracer: Any, batch: Any, record: RecordIn, event: CloudEvent[Any] | None, started: int, parent_decides: bool
) -> Any:
    """The record's span, under its producer's context when it has a usable one; None when it is not
    sampled (no span recorded: the caller goes the untraced way)."""
    if event is not None:
        parent, invalid = propagation.from_extensions(event.extensions)
    else:  # not an event: a binary-mode record may still name its context in a header
        parent, invalid = propagation.from_headers(record.headers, prefix="ce_")
    links = [Link(batch.get_span_context())]
    # A record-level ``traceparent`` header (a replay's, a redriven dead letter's) is the parent; the
    # event's own producer context then becomes a link: "the replayed record links to the original".
    relayed, relayed_invalid = propagation.from_headers(record.headers) if record.headers else (None, False)
    invalid = invalid or relayed_invalid
    if invalid and state.COUNT_INVALID is not None:
        state.COUNT_INVALID()
    if relayed is not None:
        if parent is not None:
            links.append(Link(trace.get_current_span(parent).get_span_context(), {"salesflow.link": "original"}))
        parent = relayed
    producer = trace.get_current_span(parent).get_span_context() if parent is not None else None
    if parent is None and not invalid:  # no producer context: a child of the batch's span
        parent = trace.set_span_in_context(batch)
    if producer is not None and parent_decides and not producer.trace_flags.sampled:
        return None
    attributes: dict[str, Any] = {
        c.SYSTEM: c.KAFKA,
        c.OPERATION_TYPE: "process",
        c.DESTINATION: record.topic,
        c.PARTITION: str(record.partition),
        c.OFFSET: record.offset,
    }
    if event is not None:
        attributes |= {c.EVENT_ID: str(event.id), c.EVENT_TYPE: event.type.value, c.TENANT: event.tenantid}
        attributes[c.MESSAGE_ID] = attributes[c.EVENT_ID]
    if invalid:
        attributes[c.TRACE_CONTEXT_INVALID] = True
    span = tracer.start_span(
        f"process {record.topic}",
        context=parent or ROOT,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
        start_time=started,
    )
    if not span.is_recording():
        return None
    batch.add_link(producer or span.get_span_context())
    return span


def _refused(
    processor: EventProcessor, record: RecordIn, exc: Exception, tally: BatchTally, tracer: Any, span: Any
) -> list[RecordOut]:
    """The dead letter (``EventProcessor._refused``), its reason on the span, its context in a header."""
    reason = exc.reason if isinstance(exc, InvalidEvent) else Reason.PROCESSING_ERROR
    span.set_attribute(c.STATUS, "dead_lettered")
    span.set_attribute(c.DEAD_LETTER_REASON, reason.value)
    if isinstance(exc, InvalidEvent) and exc.event_id:
        span.set_attribute(c.EVENT_ID, exc.event_id)
    else:
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, reason.value))
    with trace.use_span(span, end_on_exit=False):
        refused = processor._refused(record, exc, tally)
    outputs = _send(tracer, span, refused)
    span.end()
    return outputs


def _send(tracer: Any, parent: Any, outputs: list[RecordOut]) -> list[RecordOut]:
    """One ``send`` span for the records an event produced; each carries the span's context."""
    span = tracer.start_span(
        f"send {outputs[0].topic}" if outputs else "send",
        context=trace.set_span_in_context(parent),
        kind=SpanKind.PRODUCER,
        attributes={c.SYSTEM: c.KAFKA, c.OPERATION_TYPE: "send", c.BATCH_COUNT: len(outputs)},
    )
    headers = propagation.into_headers(propagation.carrier_of(span))
    span.end()
    if not headers:
        return outputs
    return [msgspec.structs.replace(o, headers=(*o.headers, *headers)) for o in outputs]
