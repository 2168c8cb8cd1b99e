"""The composition root: builds settings, metrics, the handler registry, Kafka and database clients.

Nothing connects at import time; every entry point (CLI, API, tests) calls these. The clients a
command or the API needs come from the async context managers at the end (``database``,
``kafka_producer``, ``event_producer``, ``replayer``): each builds its client, starts it, and closes
it when the block ends, so no command creates or disposes a client itself.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, NoReturn

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry, start_http_server
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow import gc_policy, logs, membership
from salesflow.db.engine import create_engine, engine_scope
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.handlers.injection import Resources, bind
from salesflow.handlers.plugins import load_handlers
from salesflow.kafka_clients import aiokafka_group_options, client_options, started_producer
from salesflow.metrics import PipelineMetrics
from salesflow.processor.core import EventProcessor
from salesflow.processor.watermarks import ReplayWatermarks
from salesflow.producer.client import EventProducer
from salesflow.projection.service import Projection
from salesflow.replay.republish import Replayer
from salesflow.settings import Settings

if TYPE_CHECKING:
    import faust  # imported by the worker's functions only: the API and the CLI never load Faust

    from salesflow.outbox.outbox_settings import OutboxSettings


def start_tracing(service: str, registry: CollectorRegistry | None = None) -> bool:
    """Tracing for this process, from the standard ``OTEL_*`` environment (``tracing.setup``): off,
    and nothing of OpenTelemetry loaded, unless an exporter is configured. Counts malformed trace
    contexts on ``registry``."""
    from salesflow.tracing.setup import configure_from_env

    return configure_from_env(service, registry)


def build_processor(
    settings: Settings, metrics: PipelineMetrics, registry: HandlerRegistry = DEFAULT_REGISTRY
) -> EventProcessor:
    return EventProcessor(
        registry=bind(registry, Resources(settings)),  # handlers with dependencies get them injected
        watermarks=ReplayWatermarks(settings.processor_group, settings.topics.watermarks),
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


def build_worker_app(
    settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY
) -> tuple[faust.App, PipelineMetrics]:
    from salesflow.processor.engines.faust_engine import create_app

    load_handlers(settings, registry)
    metrics = PipelineMetrics()
    return create_app(settings, build_processor(settings, metrics, registry)), metrics


def run_worker(settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY) -> None:
    """Run the worker with the configured engine (docs/explanation/architecture.md) until SIGTERM/SIGINT: it stops
    reading, delivers and commits what is in flight, and exits."""
    if settings.worker_engine == "batch":
        run_librdkafka_worker(settings, registry)
    else:
        run_faust_worker(settings, registry)


def run_librdkafka_worker(settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY) -> None:
    """The batch engine (librdkafka) on this thread; exits 1 if it stopped on a failure."""
    from salesflow.processor.engines.librdkafka_engine import LibrdkafkaEngine  # only this engine needs librdkafka

    logs.configure(settings.log_level, settings.log_format)
    settings = membership.with_instance_id(settings, "worker")  # static membership (docs/explanation/failover.md)
    load_handlers(settings, registry)
    metrics = PipelineMetrics()
    start_http_server(settings.worker_metrics_port, registry=metrics.registry)
    start_tracing("salesflow-worker", metrics.registry)
    engine = LibrdkafkaEngine(settings, build_processor(settings, metrics, registry))
    gc_policy.tune_for_batches()
    code = engine.run()
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
    settings = membership.with_instance_id(settings, "worker")  # static membership (docs/explanation/failover.md)
    membership.exit_when_fenced(settings, "worker")
    app, metrics = build_worker_app(settings, registry)
    start_http_server(settings.worker_metrics_port, registry=metrics.registry)
    start_tracing("salesflow-worker", metrics.registry)
    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level, quiet=True, override_logging=False)
    worker.spinner = None  # a terminal spinner has no place in structured logs (and hides "Ready")
    gc_policy.tune_for_batches()
    worker.execute_from_commandline()


def projection_consumer(settings: Settings) -> AIOKafkaConsumer:
    """The projection's consumer: the source topics (for `pending`), outcomes and dead letters; commits
    only after a batch is written, so auto-commit is off."""
    topics = settings.topics
    return AIOKafkaConsumer(
        *topics.sources,
        topics.outcomes,
        topics.deadletter,
        **client_options(settings),
        **aiokafka_group_options(settings),
        group_id=settings.projection_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.projection_batch_size,
    )


def run_projection(settings: Settings) -> None:
    """Run the projection until SIGTERM/SIGINT."""
    logs.configure(settings.log_level, settings.log_format)
    settings = membership.with_instance_id(settings, "projection")  # static membership (docs/explanation/failover.md)
    membership.exit_when_fenced(settings, "projection")
    metrics = PipelineMetrics()
    start_http_server(settings.projection_metrics_port, registry=metrics.registry)
    start_tracing("salesflow-projection", metrics.registry)

    async def main() -> None:
        engine = create_engine(settings.database_url)
        projection = Projection(
            settings=settings, engine=engine, metrics=metrics, consumer=projection_consumer(settings)
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, projection.stop)
        try:
            await projection.run()
        finally:
            await engine.dispose()

    gc_policy.tune_for_batches()
    asyncio.run(main())


@asynccontextmanager
async def database(settings: Settings, *, pool_size: int = 5) -> AsyncIterator[AsyncEngine]:
    """The database engine (nothing connects until it is used), disposed when the block ends."""
    async with engine_scope(settings.database_url, pool_size=pool_size) as engine:
        yield engine


# The idempotent ``acks=all`` producer, started; stopped when the block ends (one definition, there).
kafka_producer = started_producer


@asynccontextmanager
async def event_producer(settings: Settings) -> AsyncIterator[EventProducer]:
    """A started producer that sends CloudEvents to their type's topic."""
    async with kafka_producer(settings) as producer:
        yield EventProducer(producer, settings.topics)


@asynccontextmanager
async def replayer(settings: Settings) -> AsyncIterator[Replayer]:
    """A started producer that re-publishes events' original records with the replay header."""
    async with kafka_producer(settings) as producer:
        yield Replayer(settings, producer)


RELAY_LOG = logging.getLogger("salesflow.outbox.relay")
RELAY_EXIT_FAILED = 1  # a permanent error: the relay logged one line saying why


def run_relay(settings: Settings, config: OutboxSettings) -> None:
    """Run one relay until SIGTERM/SIGINT: it finishes the batch in hand (deleting what was
    acknowledged), releases the leader lock and exits. A permanent error (the metrics port taken, the
    outbox table missing, a privilege revoked, Kafka refusing the relay) ends it with one error line
    and exit status 1."""
    from salesflow.outbox.relay import Relay, RelayFailed  # only the relay's process needs these
    from salesflow.outbox.relay_metrics import OutboxMetrics

    logs.configure(settings.log_level, settings.log_format)
    metrics = OutboxMetrics()
    try:
        server, _ = start_http_server(config.metrics_port, registry=metrics.registry)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        _stop_relay(
            f"outbox relay stopped: the metrics port {config.metrics_port} is in use "
            "(SALESFLOW_OUTBOX_METRICS_PORT); give each relay on this host a port of its own, or 0 for any free one"
        )

    start_tracing("salesflow-outbox-relay", metrics.registry)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        RELAY_LOG.info("outbox relay: started, metrics on port %d, standing by for the leader lock", server.server_port)
        await Relay(settings, config, metrics, stopping).run()
        RELAY_LOG.info("outbox relay: stopped")

    try:
        asyncio.run(main())
    except RelayFailed as exc:
        _stop_relay(str(exc))


def _stop_relay(reason: str) -> NoReturn:
    RELAY_LOG.error("%s", reason)
    raise SystemExit(RELAY_EXIT_FAILED)


class NoApiAuth(Exception):
    """The API has no authentication configured, and ``--insecure-dev`` was not given."""


def run_api(*, host: str | None, port: int | None, openapi: bool = False, insecure_dev: bool = False) -> None:
    """Serve the HTTP API with uvicorn until SIGTERM/SIGINT (or print its OpenAPI document)."""
    import sys

    import orjson
    import uvicorn

    from salesflow.api.api_settings import ApiSettings
    from salesflow.api.app import create_app

    api_settings = ApiSettings()
    app = create_app(Settings(), api_settings)
    if openapi:
        sys.stdout.write(orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not app.state.authenticator.configured and not insecure_dev:
        raise NoApiAuth(
            "no authentication configured: set SALESFLOW_API_AUTH=jwt with SALESFLOW_API_JWT_ISSUER "
            "and SALESFLOW_API_JWT_AUDIENCE, or static tokens (SALESFLOW_API_TOKENS, SALESFLOW_API_ADMIN_TOKENS); "
            "or pass --insecure-dev (docs/operations/securing-the-api.md)"
        )
    start_tracing("salesflow-api", app.state.metrics.registry)
    uvicorn.run(
        app,
        host=host or api_settings.host,
        port=port if port is not None else api_settings.port,
        log_level="info",
        access_log=False,
    )
