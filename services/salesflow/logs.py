"""Structured logs: one JSON object per line, with the event's id, type, topic, partition and offset
on every line about an event, so a log search finds everything that happened to one event.

``SALESFLOW_LOG_FORMAT=text`` gives plain lines for a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from salesflow.domain.records import RecordIn

LogFormat = Literal["json", "text"]

# The attributes `extra=` may carry; they become top-level keys of the JSON line.
EVENT_FIELDS = (
    "event_id",
    "event_type",
    "tenant_id",
    "topic",
    "partition",
    "offset",
    "status",
    "reason",
    "trace_id",
    "span_id",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in EVENT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value if isinstance(value, int | float) else str(value)
        if "trace_id" not in line:
            line.update(current_trace())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def current_trace() -> dict[str, str]:
    """``trace_id`` / ``span_id`` of the current span, as the W3C ids; {} without one (and at no
    cost where OpenTelemetry was never loaded: tracing off)."""
    if "opentelemetry.trace" not in sys.modules:
        return {}
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def configure(level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Route every logger (ours, Faust's, aiokafka's) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def record_fields(record: RecordIn, **more: Any) -> dict[str, Any]:
    """``extra=`` for a log line about one record (and, where known, its event)."""
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset, **more}
