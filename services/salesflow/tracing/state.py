"""The process's tracer, or None: read once per batch by the worker, relay and projection.

No OpenTelemetry import here: with tracing off, nothing of it is loaded by the pipeline.
"""

from __future__ import annotations

from typing import Any

# An ``opentelemetry.trace.Tracer`` while tracing is on (``setup.configure``), None otherwise.
TRACER: Any = None
# A callable counting a malformed trace context (``Counter.inc`` of the process's metrics), or None.
COUNT_INVALID: Any = None
