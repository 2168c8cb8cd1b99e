"""``/api/events``: an event's status, filtered pages of events, the pending backlog, and replays."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Query, Request

from salesflow.api.audit_store import AuditEntry, AuditKind
from salesflow.api.auth import Caller, ReplayCaller
from salesflow.api.http_errors import ApiError, NotFound, Unavailable
from salesflow.api.models import (
    AUTHENTICATED_ERRORS,
    BatchReplayOut,
    ErrorBody,
    EventOut,
    EventPage,
    ReplayOut,
    SourcePosition,
)
from salesflow.api.params import IsoDateTime
from salesflow.api.principal import Principal
from salesflow.api.queries import Cursor, EventFilter, Row, get_event, list_events
from salesflow.api.replays import queue_replay
from salesflow.api.request_context import request_id, trace_id
from salesflow.domain.events import EventType
from salesflow.domain.outcome import EventStatus
from salesflow.replay.republish import ReplayResult
from salesflow.replay.store import EventPosition, positions_by_id, positions_by_status

MAX_PAGE = 500
MAX_BATCH = 1000
# Tenant ids as the events carry them: printable text (a NUL or a control character is no tenant).
TENANT_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"

router = APIRouter(
    prefix="/api/events",
    tags=["events"],
    responses=AUTHENTICATED_ERRORS,
)

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Events per page.")]
PageCursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")]
TenantFilter = Annotated[
    str | None,
    Query(
        pattern=TENANT_PATTERN,
        description=("Admin tokens: only this tenant. A tenant's token always sees its own tenant only."),
    ),
]


@router.get("/status/pending", response_model=EventPage, responses={400: {"model": ErrorBody}})
async def pending_events(
    request: Request, who: Caller, limit: Limit = 50, cursor: PageCursor = None, tenant_id: TenantFilter = None
) -> EventPage:
    """Events seen on their source topic that have no outcome yet, newest first."""
    return await _page(request, EventFilter(who.scope(tenant_id), status=EventStatus.PENDING), limit, cursor)


@router.get("", response_model=EventPage, responses={400: {"model": ErrorBody}})
async def list_events_route(
    request: Request,
    who: Caller,
    status: EventStatus | None = None,
    event_type: Annotated[EventType | None, Query(alias="type")] = None,
    since: Annotated[IsoDateTime | None, Query(description="Occurred at or after (RFC 3339; UTC if no zone).")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Occurred before (RFC 3339; UTC if no zone).")] = None,
    limit: Limit = 50,
    cursor: PageCursor = None,
    tenant_id: TenantFilter = None,
) -> EventPage:
    """The caller's events, newest first, filtered by status, type and time range; a page at a time."""
    since_utc, until_utc = _utc(since, "since"), _utc(until, "until")
    if since_utc and until_utc and since_utc >= until_utc:
        raise ApiError(400, "`since` must be before `until`")
    where = EventFilter(who.scope(tenant_id), status=status, event_type=event_type, since=since_utc, until=until_utc)
    return await _page(request, where, limit, cursor)


@router.get("/{event_id}", response_model=EventOut, responses={404: {"model": ErrorBody}})
async def get_event_route(event_id: UUID, request: Request, who: Caller) -> EventOut:
    """One event's status, error, source position and payload. Another tenant's event is not found."""
    found = await get_event(request.app.state.engine, event_id, who.scope())
    if found is None:
        raise NotFound(f"event {event_id}")
    return event_out(found)


@router.post(
    "/{event_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def replay_event(event_id: UUID, request: Request, who: ReplayCaller) -> ReplayOut:
    """Re-publish the event's original record, marked as a replay: its handlers run again and its facts
    are recomputed. The record is queued in the outbox with the replay's audit row, and the relay
    publishes it. 409 when the record can no longer be read from Kafka. Needs `events:replay`."""
    found = await positions_by_id(request.app.state.engine, [event_id], tenants=who.tenants)
    if not found:
        raise NotFound(f"event {event_id}")
    (result,), audit_id = await _replay(request, who, "event", {"event_id": str(event_id)}, found)
    if not result.ok:
        raise ApiError(409, f"event {event_id} cannot be replayed: {result.status}: {result.detail}")
    return replay_out(result, audit_id)


@router.post("/replay/batch", status_code=202, response_model=BatchReplayOut)
async def replay_batch(
    request: Request,
    who: ReplayCaller,
    event_type: EventType | None = None,
    status: Literal["failed", "processed"] = "failed",
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH)] = 100,
    tenant_id: TenantFilter = None,
) -> BatchReplayOut:
    """Re-publish the oldest `limit` events with this status (and type), in their original order, through
    the outbox with one audit row. Needs `events:replay`."""
    scope = who.scope(tenant_id)
    selected: list[EventPosition] = (
        []
        if scope.empty
        else await positions_by_status(
            request.app.state.engine,
            status=EventStatus(status),
            event_type=event_type.value if event_type else None,
            limit=limit,
            tenants=scope.tenants,
        )
    )
    asked = {"event_type": event_type.value if event_type else None, "status": status, "limit": limit}
    results, audit_id = await _replay(request, who, "batch", {**asked, "tenant_id": tenant_id}, selected)
    return BatchReplayOut(
        selected=len(selected),
        republished=sum(r.ok for r in results),
        results=[replay_out(r, audit_id if r.ok else None) for r in results],
        audit_id=audit_id,
    )


async def _page(request: Request, where: EventFilter, limit: int, cursor: str | None) -> EventPage:
    after = Cursor.decode(cursor) if cursor else None
    rows, following = await list_events(request.app.state.engine, where, limit=limit, after=after)
    return EventPage(items=[event_out(r) for r in rows], next_cursor=following.encode() if following else None)


async def _replay(
    request: Request, who: Principal, kind: AuditKind, asked: dict[str, Any], selected: list[EventPosition]
) -> tuple[list[ReplayResult], int | None]:
    if not selected:
        return [], None
    entry = AuditEntry(who, kind, asked, [], [], request_id(request), trace_id())
    try:
        results, audit_id = await queue_replay(request.app.state.engine, request.app.state.settings, entry, selected)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise Unavailable("kafka") from exc
    for result in results:
        request.app.state.metrics.replays.labels(result.status).inc()
    return results, audit_id


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ApiError(400, f"`{name}` is out of range") from None


def event_out(row: Row) -> EventOut:
    source = None
    if row["source_topic"] is not None:
        source = SourcePosition(
            topic=row["source_topic"], partition=row["source_partition"], offset=row["source_offset"]
        )
    fields: dict[str, Any] = {k: row[k] for k in EventOut.model_fields if k in row}
    return EventOut(**fields, source=source)


def replay_out(result: ReplayResult, audit_id: int | None = None) -> ReplayOut:
    def pos(p: tuple[str, int, int] | None) -> SourcePosition | None:
        return None if p is None else SourcePosition(topic=p[0], partition=p[1], offset=p[2])

    return ReplayOut(
        event_id=result.event_id,
        status=result.status,
        detail=result.detail,
        original=pos(result.original),
        republished=pos(result.republished),
        audit_id=audit_id,
    )
