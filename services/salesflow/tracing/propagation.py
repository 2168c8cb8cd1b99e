"""W3C trace context in and out of events: the CloudEvents distributed-tracing extension.

Structured mode carries ``traceparent`` / ``tracestate`` as extension attributes of the envelope;
binary mode as ``ce_traceparent`` / ``ce_tracestate`` headers; the records the worker publishes
(outcomes, dead letters) as plain ``traceparent`` / ``tracestate`` Kafka headers.

Reading never raises: a context that is not a W3C ``traceparent`` (garbage, a right-shaped one with
extra characters, a number) is reported as invalid and the event goes on under a fresh trace.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BINARY_TRACEPARENT = "ce_traceparent"
BINARY_TRACESTATE = "ce_tracestate"
# A version-00 traceparent is 55 characters; a future version may add fields. Longer is not parsed.
MAX_TRACEPARENT = 512

Carrier = dict[str, str]


def current_carrier() -> Carrier:
    """The calling code's current trace context as ``{"traceparent": ..., "tracestate": ...}``, or {}.

    Free when the process never loaded OpenTelemetry: then no span can be current."""
    if "opentelemetry.trace" not in sys.modules:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: Carrier = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


def into_envelope(envelope: dict[str, Any], carrier: Mapping[str, str]) -> dict[str, Any]:
    """``envelope`` with the carrier's context as extension attributes, unless it has its own."""
    if carrier and TRACEPARENT not in envelope:
        envelope.update(carrier)
    return envelope


def into_binary_headers(headers: list[tuple[str, bytes]], carrier: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """Binary-mode ``ce_*`` headers with the carrier's context, unless they carry their own."""
    if carrier and not any(name == BINARY_TRACEPARENT for name, _ in headers):
        headers.extend((f"ce_{name}", value.encode()) for name, value in carrier.items())
    return headers


def into_headers(carrier: Mapping[str, str]) -> tuple[tuple[str, bytes], ...]:
    """Plain Kafka headers for a record the pipeline publishes (outcome, command, dead letter)."""
    return tuple((name, value.encode()) for name, value in carrier.items())


def header_text(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    """The last header ``name`` as text, or None (absent, or not UTF-8)."""
    found: str | None = None
    for key, raw in headers:
        if key == name:
            try:
                found = raw.decode("utf-8")
            except (UnicodeDecodeError, AttributeError):
                found = "\ufffd"  # present but unreadable: invalid, never a crash
    return found


def extract(traceparent: Any, tracestate: Any = None) -> tuple[Any, bool]:
    """``(context, invalid)``: the remote parent's ``Context`` (None when absent or invalid), and whether
    a traceparent was present but unusable. Loads OpenTelemetry: call it only while tracing is on."""
    if traceparent is None:
        return None, False
    if not isinstance(traceparent, str) or len(traceparent) > MAX_TRACEPARENT or "\x00" in traceparent:
        return None, True
    from opentelemetry.trace import get_current_span

    carrier = {TRACEPARENT: traceparent}
    if isinstance(tracestate, str) and len(tracestate) <= MAX_TRACEPARENT * 2 and "\x00" not in tracestate:
        carrier[TRACESTATE] = tracestate
    context = _propagator().extract(carrier)
    if not get_current_span(context).get_span_context().is_valid:
        return None, True
    return context, False


def from_extensions(extensions: Mapping[str, Any]) -> tuple[Any, bool]:
    """The producer's context from a decoded event's extension attributes (both content modes)."""
    return extract(extensions.get(TRACEPARENT), extensions.get(TRACESTATE))


def from_headers(headers: Sequence[tuple[str, bytes]], prefix: str = "") -> tuple[Any, bool]:
    """The context of a record's ``traceparent`` header (``prefix="ce_"``: a binary-mode record's)."""
    return extract(header_text(headers, prefix + TRACEPARENT), header_text(headers, prefix + TRACESTATE))


def carrier_of(span: Any) -> Carrier:
    """``span``'s context as a carrier (empty when the span's context is invalid)."""
    from opentelemetry.trace import set_span_in_context

    carrier: Carrier = {}
    _propagator().inject(carrier, set_span_in_context(span))
    return carrier


_PROPAGATOR: list[Any] = []  # the W3C propagator, made on first use (tracing on)


def _propagator() -> Any:
    if not _PROPAGATOR:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _PROPAGATOR.append(TraceContextTextMapPropagator())
    return _PROPAGATOR[0]
