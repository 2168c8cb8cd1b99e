"""The outcome record: one per processed event on the outcomes topic, the projection's source of truth."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

import msgspec

from salesflow.domain.outputs import AnyFact


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


class SourcePosition(msgspec.Struct, frozen=True, kw_only=True):
    """Where a record was read: enough to find it again for a per-event replay."""

    topic: str
    partition: int
    offset: int


class HandlerReport(msgspec.Struct, frozen=True, kw_only=True):
    handler: str
    status: Literal["ok", "failed"]
    attempts: int
    error: str | None = None


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one event: its final status, each handler's report and every fact it produced."""

    event_id: UUID
    type: str
    tenant_id: str
    lead_id: str
    status: Literal["processed", "failed"]  # EventStatus.PROCESSED or .FAILED
    occurred_at: datetime
    processed_at: datetime
    attempts: int
    error_message: str | None = None
    replay: bool = False
    position: SourcePosition
    handlers: tuple[HandlerReport, ...] = ()
    facts: tuple[AnyFact, ...] = ()
