"""What every command shares: settings, a console, running a coroutine.

Command modules import nothing heavy at module level: Kafka and database clients, Faust, FastAPI,
SQLAlchemy and the settings themselves are imported inside the commands, and their clients come from
``salesflow.bootstrap`` (the composition root), so ``salesflow --help`` starts without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console

if TYPE_CHECKING:
    from salesflow.settings import Settings

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    from salesflow.settings import Settings

    return Settings()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
