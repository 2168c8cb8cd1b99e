"""The FastAPI application: routes, bearer auth, error bodies, request metrics, and its resources.

``create_app`` wires the API from the clients every service builds the same way (``db.engine``,
``kafka_clients``; ``salesflow.bootstrap.run_api`` serves it): the database engine, made at startup
and disposed at shutdown unless one is injected (tests), and a Kafka producer, started lazily on the
first replay and stopped at shutdown. The metrics registry can be injected too. Every error is a JSON
body ``{"detail": ...}``: bad input is a 4xx, an unreachable dependency a 503; nothing the caller
sends should make a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from salesflow import __version__
from salesflow.api.api_settings import ApiSettings
from salesflow.api.auth import Authenticator
from salesflow.api.gateway import KafkaGateway
from salesflow.api.http_errors import ApiError
from salesflow.api.http_metrics import ApiMetrics
from salesflow.api.routes import analytics, audit, dead_letters, events, ops
from salesflow.db.engine import engine_scope
from salesflow.kafka_clients import started_producer
from salesflow.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Event status, replay and analytics of SalesFlow Events.

Every `/api` call needs `Authorization: Bearer <token>`: an access token of the configured OIDC
issuer, or a static token. Reads need the scope `events:read`, replays `events:replay`, the audit
trail `admin`. A token sees only its tenants' events and analytics (another tenant's event is a 404);
an admin may read and replay across tenants, optionally narrowed with `tenant_id`. Every replay is
recorded in the audit trail (`GET /api/audit`)."""


def create_app(
    settings: Settings,
    api_settings: ApiSettings,
    *,
    registry: CollectorRegistry | None = None,
    engine: AsyncEngine | None = None,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """Build the API; nothing connects until it starts (or, for Kafka, until the first replay)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:  # closed in reverse: Kafka first, then the engine
            database = engine_scope(settings.database_url)
            app.state.engine = engine or await resources.enter_async_context(database)
            app.state.kafka = KafkaGateway(settings, started_producer)
            resources.push_async_callback(app.state.kafka.close)
            resources.push_async_callback(app.state.authenticator.close)
            if not app.state.authenticator.configured:
                log.warning("no API authentication configured (SALESFLOW_API_AUTH): every /api call will be refused")
            yield

    app = FastAPI(title="SalesFlow Events API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.api_settings = api_settings
    app.state.authenticator = authenticator or Authenticator(api_settings)
    app.state.metrics = ApiMetrics(registry)
    for router in (events.router, dead_letters.router, analytics.router, audit.router, ops.router):
        app.include_router(router)
    _install_error_handlers(app)
    app.add_middleware(MeasureRequests)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        challenge = getattr(exc, "challenge", None) or ("Bearer" if exc.status == 401 else None)
        headers = {"WWW-Authenticate": challenge} if challenge else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        # Input Postgres refuses (a value out of its range): the caller's to fix, not a server error.
        return JSONResponse({"detail": f"invalid input: {str(exc.orig).splitlines()[0]}"}, status_code=400)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "database is unavailable, try again later"}, status_code=503)

    @app.exception_handler(OSError)
    async def connection_error(request: Request, exc: OSError) -> JSONResponse:
        log.warning("connection error on %s %s: %r", request.method, request.url.path, exc)
        return JSONResponse({"detail": "a dependency is unreachable, try again later"}, status_code=503)


class MeasureRequests:
    """Counts and times each HTTP request by method, route template and status.

    A plain ASGI middleware, not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs
    the route in a task of its own and, when that task ends without a response, raises
    ``RuntimeError("No response returned.")``, which the client gets as a 500. CI saw that once, on
    ``POST /api/events/{event_id}/replay`` under schemathesis (why the task ended is not known). This
    one runs the route in the request's own task and only wraps ``send`` to read the status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = "500"  # what the server answers if the route raises before a response starts

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the template: bounded labels
            metrics: ApiMetrics = scope["app"].state.metrics
            metrics.requests.labels(scope["method"], route, status).inc()
            metrics.duration.labels(scope["method"], route).observe(time.perf_counter() - started)
