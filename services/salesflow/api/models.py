"""What the API returns: pydantic models, published in the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from salesflow.domain.outcome import EventStatus
from salesflow.replay.republish import ReplayStatus


def _in_utc(value: Any) -> Any:
    """Every time in UTC, so it is written as RFC 3339 with its offset (``Z``). asyncpg reads a
    timestamptz of -infinity or infinity (stored before the contract bounded times) as a naive
    ``datetime.min`` or ``max``: that is no time at all, so null."""
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        return None if value in (datetime.min, datetime.max) else value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


Timestamp = Annotated[AwareDatetime, BeforeValidator(_in_utc)]
OptionalTimestamp = Annotated[AwareDatetime | None, BeforeValidator(_in_utc)]


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong, for a person to read.")


# What every authenticated route may answer besides its own: no or a bad token, a missing scope or
# tenant, a dependency down.
AUTHENTICATED_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


class SourcePosition(BaseModel):
    topic: str
    partition: int
    offset: int


class EventOut(BaseModel):
    """One row of ``events``: the event's status and where it was read."""

    id: UUID
    type: str | None
    tenant_id: str | None
    lead_id: str | None
    status: EventStatus
    created_at: OptionalTimestamp = Field(description="When the event occurred (RFC 3339, UTC).")
    processed_at: OptionalTimestamp
    error_message: str | None
    attempts: int
    replay_count: int
    source: SourcePosition | None
    payload: dict[str, Any] | None
    received_at: Timestamp
    updated_at: Timestamp


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ReplayOut(BaseModel):
    event_id: UUID
    status: ReplayStatus
    detail: str | None = None
    original: SourcePosition | None = None
    republished: SourcePosition | None = Field(
        default=None, description="Where the marked copy was published (null while `queued` in the outbox)."
    )
    audit_id: int | None = Field(default=None, description="The replay's row in `GET /api/audit`.")


class BatchReplayOut(BaseModel):
    selected: int = Field(description="Events that matched the filters (up to the limit).")
    republished: int = Field(description="Events queued for republishing (status `queued`).")
    results: list[ReplayOut]
    audit_id: int | None = Field(default=None, description="The replay's row in `GET /api/audit`; null if none.")


class DeadLetterRedriveOut(BaseModel):
    selected: int = Field(description="Dead letters that matched and that this token may redrive.")
    queued: list[str] = Field(description="Ids (`topic:partition:offset`) queued for their original topic.")
    audit_id: int | None = Field(default=None, description="The redrive's row in `GET /api/audit`; null if none.")


class FunnelRow(BaseModel):
    tenant_id: str
    day: date
    stage: str
    leads: int
    events: int


class AiRoiRow(BaseModel):
    tenant_id: str
    day: date
    actions: int
    succeeded: int
    cost_usd: float
    value_usd: float
    roi: float | None = Field(description="value / cost; null when the cost is 0.")


class AttributionRow(BaseModel):
    tenant_id: str
    day: date
    touch: str
    source: str
    channel: str
    touches: int
    leads: int
    autopilot_touches: int


class FunnelRows(BaseModel):
    items: list[FunnelRow]


class AiRoiRows(BaseModel):
    items: list[AiRoiRow]


class AttributionRows(BaseModel):
    items: list[AttributionRow]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="Each dependency: `ok`, or why not.")
