"""OpenTelemetry tracing, off unless an exporter is configured (``salesflow.tracing.setup``).

This package's ``__init__`` and ``state`` import nothing from OpenTelemetry: the hot paths read
``state.TRACER`` (None when off) once per batch and load the traced code only when it is set.
"""
