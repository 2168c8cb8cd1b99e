"""Side effects applied once per event: a handler that takes ``db`` runs in one transaction with its
idempotency record, a row of ``handler_effects`` keyed by (handler, tenant, event id).

- First delivery: the record is inserted, the handler runs, both commit together.
- Re-delivery (a crash before the offset commit, a rebalance): the record is there, the handler is
  skipped. A second worker racing on the same event waits on the record's row lock, then skips.
- Replay: a handler declared ``on_replay="recompute"`` runs again (``runs`` is counted up), one declared
  ``"skip"`` does not.
- Any error rolls back the handler's writes and its record together; the retry policy (dispatch) then
  decides whether it runs again. A database that is unreachable or drops the connection is transient.

The tenant is part of the key: an event id reused by another tenant is another event, never skipped
because of the first one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, Uuid, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from salesflow.domain.events import CloudEvent
from salesflow.domain.outputs import Output
from salesflow.errors import TransientHandlerError
from salesflow.handlers.signature import OnReplay

metadata = MetaData()

# Created by migration 0004_handler_effects in the SalesFlow database; `ensure_table` creates it in a
# separate handler database (SALESFLOW_HANDLER_DATABASE_URL).
handler_effects = Table(
    "handler_effects",
    metadata,
    Column("handler", Text, primary_key=True),
    Column("tenant_id", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("runs", Integer, nullable=False, server_default="1"),
    Column("first_applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

HandlerCall = Callable[[AsyncSession], Awaitable[Sequence[Output] | None]]


async def run_once(
    sessions: async_sessionmaker[AsyncSession],
    handler: str,
    on_replay: OnReplay,
    event: CloudEvent[Any],
    replay: bool,
    call: HandlerCall,
) -> tuple[list[Output], bool]:
    """Run ``call`` with a session, in one transaction with the record of (handler, event); return its
    outputs and whether it ran (False: already applied, skipped)."""
    try:
        async with sessions() as session, session.begin():
            if not await _claim(session, handler, event):
                if not (replay and on_replay == "recompute"):
                    return [], False
                await _count_rerun(session, handler, event)
            return list(await call(session) or ()), True
    except (OperationalError, InterfaceError) as exc:
        raise TransientHandlerError(f"handler database: {_first_line(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            raise TransientHandlerError(f"handler database: {_first_line(exc)}") from exc
        raise


async def _claim(session: AsyncSession, handler: str, event: CloudEvent[Any]) -> bool:
    """Insert the record; False when it exists. A concurrent claim of the same key waits on ours."""
    claimed = await session.execute(
        insert(handler_effects)
        .values(handler=handler, tenant_id=event.tenantid, event_id=event.id, event_type=event.type.value)
        .on_conflict_do_nothing()
        .returning(handler_effects.c.runs)
    )
    return claimed.first() is not None


async def _count_rerun(session: AsyncSession, handler: str, event: CloudEvent[Any]) -> None:
    key = handler_effects.c
    await session.execute(
        update(handler_effects)
        .where(key.handler == handler, key.tenant_id == event.tenantid, key.event_id == event.id)
        .values(runs=key.runs + 1, applied_at=func.now())
    )


async def ensure_table(engine: AsyncEngine) -> None:
    """Create ``handler_effects`` where no migration did (a handler database of its own)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all, checkfirst=True)


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
