"""Build the tracer provider from the standard ``OTEL_*`` environment (called by ``bootstrap`` only).

Off unless an exporter is configured: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``; ``none`` is
off) or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``..._TRACES_ENDPOINT``);
``OTEL_SDK_DISABLED=true`` wins over both. The SDK itself reads the rest: the sampler
(``OTEL_TRACES_SAMPLER``, ``..._ARG``; ours defaults to ``parentbased_always_on`` as the SDK's does),
the OTLP endpoint, headers and timeout, the batch processor's ``OTEL_BSP_*``, and the resource
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``). The protocol is ``http/protobuf`` unless
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` says ``grpc``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from salesflow.tracing import state

INSTRUMENTATION = "salesflow"
_TRUE = {"true", "1", "yes", "on"}


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_from_env(
    service: str, registry: CollectorRegistry | None = None, env: Mapping[str, str] = os.environ
) -> bool:
    """Start tracing for this process when the environment asks for it; returns whether it did."""
    if not enabled(env):
        return False
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    configure(service, BatchSpanProcessor(exporter_from_env(env)), registry, env)
    return True


def configure(
    service: str, processor: Any, registry: CollectorRegistry | None = None, env: Mapping[str, str] = os.environ
) -> Any:
    """Install a tracer provider with ``processor`` (the tests' in-memory exporter goes here) as the
    global one and the pipeline's; returns the provider."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attributes))  # sampler from OTEL_TRACES_SAMPLER
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)  # once per process; later calls are refused with a warning
    use(provider, registry)
    return provider


def use(provider: Any, registry: CollectorRegistry | None = None) -> None:
    """Make ``provider`` the pipeline's (``state.TRACER``), counting invalid contexts on ``registry``."""
    state.TRACER = provider.get_tracer(INSTRUMENTATION)
    state.COUNT_INVALID = invalid_counter(registry).inc if registry is not None else None


def disable() -> None:
    """Tracing off for the pipeline (tests and benchmarks switch it back and forth)."""
    state.TRACER = None
    state.COUNT_INVALID = None


def invalid_counter(registry: CollectorRegistry) -> Counter:
    """Events whose trace context was unusable; each went on under a fresh trace."""
    return Counter(
        "salesflow_trace_context_invalid",
        "Events or records whose traceparent was malformed; processed under a fresh trace",
        registry=registry,
    )


def exporter_from_env(env: Mapping[str, str] = os.environ) -> Any:
    """The span exporter ``OTEL_TRACES_EXPORTER`` names (``otlp`` by default; ``console``)."""
    name = (env.get("OTEL_TRACES_EXPORTER", "") or "otlp").split(",")[0].strip().lower()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: supported are otlp, console and none")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    )
    if protocol.strip().lower() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
