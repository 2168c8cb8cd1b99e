"""What ties an audit row to the rest of the request's story: its request id and its trace id."""

from __future__ import annotations

import re

from fastapi import Request

REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id")
# Kept only when it looks like an id: the header is the caller's to choose, the audit row is not.
_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,200}$")


def request_id(request: Request) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = request.headers.get(name)
        if value is not None and _ID.match(value):
            return value
    return None


def trace_id() -> str | None:
    """The current OpenTelemetry trace id (32 hex digits), when OpenTelemetry is installed and a span
    is recording; else None."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
