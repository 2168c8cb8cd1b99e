"""``/api/analytics``: funnel, AI ROI and attribution per tenant and UTC day, from the views."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import TableClause

from salesflow.api.auth import Caller
from salesflow.api.http_errors import ApiError
from salesflow.api.models import AUTHENTICATED_ERRORS, AiRoiRows, AttributionRows, ErrorBody, FunnelRows
from salesflow.api.params import IsoDate
from salesflow.api.queries import AI_ROI_DAILY, ATTRIBUTION_DAILY, FUNNEL_DAILY, daily_rows
from salesflow.api.routes.events import TenantFilter

MAX_ROWS = 5000

router = APIRouter(
    prefix="/api/analytics",
    tags=["analytics"],
    responses={400: {"model": ErrorBody}, **AUTHENTICATED_ERRORS},
)

Since = Annotated[IsoDate | None, Query(description="First UTC day (inclusive).")]
Until = Annotated[IsoDate | None, Query(description="Last UTC day (inclusive).")]
Limit = Annotated[int, Query(ge=1, le=MAX_ROWS, description="At most this many rows, by day.")]


@dataclass(frozen=True)
class DailyReport:
    """One ``GET /api/analytics/<path>``: rows of ``view`` per tenant and day, answered as ``model``."""

    path: str
    name: str  # the route's name: its OpenAPI summary and operation id derive from it
    view: TableClause
    model: type[BaseModel]
    description: str


REPORTS = (
    DailyReport(
        "/funnel",
        "funnel",
        FUNNEL_DAILY,
        FunnelRows,
        "Leads per funnel stage (`created`, `contacted`, `in_sequence`, `sequence_completed`), per day.",
    ),
    DailyReport(
        "/ai-roi",
        "ai_roi",
        AI_ROI_DAILY,
        AiRoiRows,
        "Autopilot actions, their AI cost and attributed value, and ROI (value / cost), per day.",
    ),
    DailyReport(
        "/attribution",
        "attribution",
        ATTRIBUTION_DAILY,
        AttributionRows,
        "Touches and leads by touch kind, source and channel, per day.",
    ),
)


def _endpoint(report: DailyReport) -> Callable[..., Awaitable[BaseModel]]:
    async def endpoint(
        request: Request,
        who: Caller,
        since: Since = None,
        until: Until = None,
        limit: Limit = 1000,
        tenant_id: TenantFilter = None,
    ) -> BaseModel:
        if since and until and since > until:
            raise ApiError(400, "`since` must not be after `until`")
        scope = who.scope(tenant_id)
        rows = await daily_rows(request.app.state.engine, report.view, scope, since=since, until=until, limit=limit)
        return report.model(items=rows)

    return endpoint


for _report in REPORTS:
    router.add_api_route(
        _report.path,
        _endpoint(_report),
        methods=["GET"],
        response_model=_report.model,
        name=_report.name,
        description=_report.description,
    )
