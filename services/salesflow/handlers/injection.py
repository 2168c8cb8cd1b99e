"""The composition root's side of handlers: the resources they may be injected with, made once per
process, and ``bind``, which turns each handler that needs more than the event into an invoker.

What each parameter gets was decided at registration (``handlers.signature``); here nothing is looked
up per event. A pure handler (``handler(event)``) gets no invoker and is called as it is. The database
engine and the HTTP client are created on first use, inside the running event loop, and only when a
handler asks for them; ``Resources.aclose()`` releases them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from salesflow.db.engine import create_engine
from salesflow.domain.events import CloudEvent
from salesflow.domain.outputs import Output
from salesflow.handlers import effects
from salesflow.handlers.registry import HandlerRegistry, Invoker, RegisteredHandler
from salesflow.settings import Settings

if TYPE_CHECKING:
    import httpx

HTTP_TIMEOUT_SECONDS = 10.0


class Resources:
    """What handlers can be injected with, shared by every handler of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._http: httpx.AsyncClient | None = None
        self._table_ready = asyncio.Lock()
        self._table_checked = False

    @property
    def database_url(self) -> str:
        """``SALESFLOW_HANDLER_DATABASE_URL``, or the SalesFlow database when it is not set."""
        own = self.settings.handler_database_url
        return own.get_secret_value() if own and own.get_secret_value() else self.settings.database_url

    async def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on the handler database; on a database of its own, the idempotency table is
        created there the first time."""
        if self._sessions is None:
            self._engine = create_engine(self.database_url)
            self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        if not self._table_checked:
            async with self._table_ready:
                if not self._table_checked and self.database_url != self.settings.database_url:
                    assert self._engine is not None
                    await effects.ensure_table(self._engine)
                self._table_checked = True
        return self._sessions

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx  # only a process whose handlers ask for `http` needs it installed

            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._engine is not None:
            await self._engine.dispose()


def bind(registry: HandlerRegistry, resources: Resources) -> HandlerRegistry:
    """A copy of ``registry`` whose handlers with dependencies are ready to run with ``resources``."""
    return registry.with_invokers(lambda handler: None if handler.signature.pure else _invoker(handler, resources))


def _invoker(handler: RegisteredHandler, resources: Resources) -> Invoker:
    static: dict[str, Any] = {}
    for param, dep in handler.signature.params:
        if dep == "settings":
            static[param] = resources.settings
        elif dep == "logger":
            static[param] = logging.getLogger(f"salesflow.handler.{handler.name}")
    event_params = [p for p, dep in handler.signature.params if dep == "event"]
    http_params = [p for p, dep in handler.signature.params if dep == "http"]
    db_params = [p for p, dep in handler.signature.params if dep == "db"]
    fn = handler.fn

    def arguments(event: CloudEvent[Any]) -> dict[str, Any]:
        kwargs = dict(static)
        kwargs.update(dict.fromkeys(event_params, event))
        if http_params:
            kwargs.update(dict.fromkeys(http_params, resources.http))
        return kwargs

    if db_params:

        async def invoke_once(event: CloudEvent[Any], replay: bool) -> tuple[list[Output], bool]:
            async def call(session: AsyncSession) -> Any:
                return await fn(**arguments(event), **dict.fromkeys(db_params, session))

            sessions = await resources.sessions()
            return await effects.run_once(sessions, handler.name, handler.on_replay, event, replay, call)

        return invoke_once

    async def invoke(event: CloudEvent[Any], replay: bool) -> tuple[list[Output], bool]:
        # No database, so no record: "skip" can only go by the replay flag (a re-delivery that is not
        # recognised as a replay runs it again: at least once).
        if replay and handler.on_replay == "skip":
            return [], False
        return list(await fn(**arguments(event)) or ()), True

    return invoke
