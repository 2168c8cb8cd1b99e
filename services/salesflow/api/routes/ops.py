"""Operational endpoints: liveness, readiness (Postgres and Kafka), and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from salesflow.api.models import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and answering."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when Postgres answers (reads) and Kafka answers (replays); 503 with the reason otherwise."""
    timeout = request.app.state.api_settings.ready_timeout_seconds
    database, kafka = await asyncio.gather(_database(request, timeout), request.app.state.kafka.check(timeout))
    checks = {"database": database, "kafka": kafka}
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _database(request: Request, timeout: float) -> str:
    async def ping() -> None:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), timeout)
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"
