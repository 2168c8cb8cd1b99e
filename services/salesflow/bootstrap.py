"""The composition root: builds settings, metrics, the handler registry, Kafka and database clients.

Nothing connects at import time; every entry point (CLI, tests) calls these.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
from typing import TYPE_CHECKING

from prometheus_client import start_http_server

from salesflow import logs
from salesflow.db.engine import create_engine
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.metrics import PipelineMetrics
from salesflow.processor.pipeline import EventProcessor
from salesflow.projection.service import Projection
from salesflow.settings import Settings

if TYPE_CHECKING:  # each engine's client library is imported only when that engine runs
    import faust


def build_processor(
    settings: Settings, metrics: PipelineMetrics, registry: HandlerRegistry = DEFAULT_REGISTRY
) -> EventProcessor:
    return EventProcessor(
        registry=registry,
        metrics=metrics,
        topics=settings.topics,
        group=settings.processor_group,
        max_event_bytes=settings.max_event_bytes,
        policy=RetryPolicy(
            max_attempts=settings.handler_max_attempts,
            backoff_seconds=settings.handler_backoff_seconds,
            backoff_max_seconds=settings.handler_backoff_max_seconds,
        ),
    )


def import_handler_modules(settings: Settings) -> None:
    """Import the configured extra handler modules: their decorators register into the registry."""
    for name in filter(None, (m.strip() for m in settings.handler_modules.split(","))):
        importlib.import_module(name)


def build_worker_app(
    settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY
) -> tuple[faust.App, PipelineMetrics]:
    from salesflow.processor.engines.faust_engine import create_app

    import_handler_modules(settings)
    metrics = PipelineMetrics()
    return create_app(settings, build_processor(settings, metrics, registry)), metrics


def run_worker(settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY) -> None:
    """Run the worker with the configured engine (README "Engines") until SIGTERM/SIGINT: it stops
    reading, delivers and commits what is in flight, and exits."""
    if settings.worker_engine == "batch":
        run_batch_worker(settings, registry)
    else:
        run_faust_worker(settings, registry)


def run_batch_worker(settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY) -> None:
    """The batch engine (librdkafka) on this thread; exits 1 if it stopped on a failure."""
    from salesflow.processor.engines.batch import BatchEngine  # only this engine needs librdkafka

    logs.configure(settings.log_level, settings.log_format)
    import_handler_modules(settings)
    metrics = PipelineMetrics()
    start_http_server(settings.worker_metrics_port, registry=metrics.registry)
    code = BatchEngine(settings, build_processor(settings, metrics, registry)).run()
    if code:
        raise SystemExit(code)


def run_faust_worker(settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY) -> None:
    """The Faust engine: a Faust worker with one agent per source topic."""
    import faust

    # A loop of its own, made current before the app exists, so Faust's signal handlers (graceful
    # SIGTERM) are installed on the loop that runs, whatever ran before in this process.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    logs.configure(settings.log_level, settings.log_format)
    app, metrics = build_worker_app(settings, registry)
    start_http_server(settings.worker_metrics_port, registry=metrics.registry)
    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level, quiet=True, override_logging=False)
    worker.spinner = None  # a terminal spinner has no place in structured logs (and hides "Ready")
    worker.execute_from_commandline()


def run_projection(settings: Settings) -> None:
    """Run the projection until SIGTERM/SIGINT."""
    logs.configure(settings.log_level, settings.log_format)
    metrics = PipelineMetrics()
    start_http_server(settings.projection_metrics_port, registry=metrics.registry)

    async def main() -> None:
        engine = create_engine(settings.database_url)
        projection = Projection(settings=settings, engine=engine, metrics=metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, projection.stop)
        try:
            await projection.run()
        finally:
            await engine.dispose()

    asyncio.run(main())
