"""``/api/audit``: the replay audit trail, newest first, for callers with the `admin` scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from salesflow.api import audit_store
from salesflow.api.auth import AdminCaller
from salesflow.api.models import AUTHENTICATED_ERRORS
from salesflow.api.routes.events import TENANT_PATTERN

MAX_PAGE = 500

router = APIRouter(
    prefix="/api/audit",
    tags=["audit"],
    responses=AUTHENTICATED_ERRORS,
)


class AuditRow(BaseModel):
    id: int
    requested_at: datetime
    subject: str = Field(description="The token's `sub`; a static token: its owner and a fingerprint.")
    issuer: str = Field(description="The token's `iss`, or `static`.")
    caller_tenants: list[str] | None = Field(description="The caller's tenants; null: every tenant (admin).")
    kind: Literal["event", "batch", "dead_letter"]
    filter: dict[str, Any] = Field(description="What the request asked for (path and query parameters).")
    tenants: list[str] = Field(description="The tenants of the records replayed.")
    ids: list[str] = Field(description="The event ids replayed.")
    count: int
    request_id: str | None
    trace_id: str | None


class AuditPage(BaseModel):
    items: list[AuditRow]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null on the last.")


@router.get("", response_model=AuditPage)
async def audit(
    request: Request,
    who: AdminCaller,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Rows with a smaller id.")] = None,
    tenant_id: Annotated[str | None, Query(pattern=TENANT_PATTERN, description="Replays of this tenant.")] = None,
) -> AuditPage:
    """Every replay the API accepted: who, which tenants, what, when, and its request and trace ids."""
    rows = await audit_store.page(request.app.state.engine, limit=limit, before=before, tenant_id=tenant_id)
    following = rows[-1]["id"] if len(rows) == limit else None
    return AuditPage(items=[AuditRow(**row) for row in rows], next_before=following)
