"""``/api/analytics``: funnel, AI ROI and attribution per tenant and UTC day, from the views."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import TableClause

from salesflow.api.auth import Caller, Principal
from salesflow.api.http_errors import ApiError
from salesflow.api.models import AiRoiRows, AttributionRows, ErrorBody, FunnelRows
from salesflow.api.params import IsoDate
from salesflow.api.queries import AI_ROI_DAILY, ATTRIBUTION_DAILY, FUNNEL_DAILY, daily_rows
from salesflow.api.routes.events import TenantFilter

MAX_ROWS = 5000

router = APIRouter(
    prefix="/api/analytics",
    tags=["analytics"],
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)

Since = Annotated[IsoDate | None, Query(description="First UTC day (inclusive).")]
Until = Annotated[IsoDate | None, Query(description="Last UTC day (inclusive).")]
Limit = Annotated[int, Query(ge=1, le=MAX_ROWS, description="At most this many rows, by day.")]


@router.get("/funnel", response_model=FunnelRows)
async def funnel(
    request: Request,
    who: Caller,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
    tenant_id: TenantFilter = None,
) -> FunnelRows:
    """Leads per funnel stage (`created`, `contacted`, `in_sequence`, `sequence_completed`), per day."""
    return FunnelRows(items=await _rows(request, who, FUNNEL_DAILY, since, until, limit, tenant_id))


@router.get("/ai-roi", response_model=AiRoiRows)
async def ai_roi(
    request: Request,
    who: Caller,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
    tenant_id: TenantFilter = None,
) -> AiRoiRows:
    """Autopilot actions, their AI cost and attributed value, and ROI (value / cost), per day."""
    return AiRoiRows(items=await _rows(request, who, AI_ROI_DAILY, since, until, limit, tenant_id))


@router.get("/attribution", response_model=AttributionRows)
async def attribution(
    request: Request,
    who: Caller,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
    tenant_id: TenantFilter = None,
) -> AttributionRows:
    """Touches and leads by touch kind, source and channel, per day."""
    return AttributionRows(items=await _rows(request, who, ATTRIBUTION_DAILY, since, until, limit, tenant_id))


async def _rows(
    request: Request,
    who: Principal,
    view: TableClause,
    since: date | None,
    until: date | None,
    limit: int,
    tenant_id: str | None,
) -> list[Any]:
    if since and until and since > until:
        raise ApiError(400, "`since` must not be after `until`")
    return await daily_rows(request.app.state.engine, view, who.scope(tenant_id), since=since, until=until, limit=limit)
