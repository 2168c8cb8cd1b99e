"""Prometheus exemplars from spans: a histogram sample points at the trace it was measured in."""

from __future__ import annotations

from typing import Any


def exemplar_of(span: Any) -> dict[str, str] | None:
    """``{"trace_id", "span_id"}`` of a sampled span (an unsampled one is in no backend: no exemplar)."""
    context = span.get_span_context()
    if not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
