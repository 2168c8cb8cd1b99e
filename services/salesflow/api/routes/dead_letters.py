"""``/api/dead-letters``: redrive dead letters to their original topic, audited like every replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import StringConstraints

from salesflow.api.audit_store import AuditEntry
from salesflow.api.auth import ReplayCaller
from salesflow.api.dead_letter_redrive import queue_redrive, visible
from salesflow.api.http_errors import ApiError
from salesflow.api.models import AUTHENTICATED_ERRORS, DeadLetterRedriveOut, ErrorBody
from salesflow.api.request_context import request_id, trace_id
from salesflow.errors import DeadLetterReason, ReplayError
from salesflow.replay.deadletters import DeadLetterId, get_dead_letters, list_dead_letters

MAX_REDRIVE = 1000
# A dead letter's id, ``topic:partition:offset``: a Kafka topic name (its legal characters), a partition
# and an offset within Postgres's integer and bigint.
DEAD_LETTER_ID = r"^[A-Za-z0-9._-]{1,249}:[0-9]{1,9}:[0-9]{1,18}$"

router = APIRouter(
    prefix="/api/dead-letters",
    tags=["dead letters"],
    responses=AUTHENTICATED_ERRORS,
)


@router.post("/redrive", status_code=202, response_model=DeadLetterRedriveOut, responses={400: {"model": ErrorBody}})
async def redrive_dead_letters(
    request: Request,
    who: ReplayCaller,
    dead_letter_id: Annotated[
        list[Annotated[str, StringConstraints(pattern=DEAD_LETTER_ID)]] | None,
        Query(alias="id", max_length=MAX_REDRIVE, description="Dead letters by id, `topic:partition:offset`."),
    ] = None,
    reason: Annotated[DeadLetterReason | None, Query(description="Or: the oldest of this reason.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_REDRIVE)] = 100,
) -> DeadLetterRedriveOut:
    """Publish chosen dead letters' records again to their original topic and partition (after a fix,
    the worker decodes them afresh), through the outbox with one audit row, and mark them redriven.
    By id, or the oldest not yet redriven of a reason. Needs `events:replay`."""
    engine = request.app.state.engine
    if dead_letter_id:
        try:
            ids = [DeadLetterId.parse(text) for text in dead_letter_id]
        except ReplayError as exc:
            raise ApiError(400, str(exc)) from None
        rows = [r for r in await get_dead_letters(engine, ids) if r["redriven_at"] is None]
    elif reason is not None:
        rows = await list_dead_letters(engine, reason=reason.value, limit=limit, oldest_first=True)
    else:
        raise ApiError(400, "name the dead letters: `id` (one or more) or `reason`")
    mine = visible(rows, who.tenants)
    asked = {"ids": dead_letter_id, "reason": reason.value if reason else None, "limit": limit}
    entry = AuditEntry(who, "dead_letter", asked, [], [], request_id(request), trace_id())
    queued, audit_id = await queue_redrive(engine, entry, mine)
    request.app.state.metrics.replays.labels("queued").inc(len(queued))
    return DeadLetterRedriveOut(selected=len(mine), queued=queued, audit_id=audit_id)
