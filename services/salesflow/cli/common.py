"""What every command shares: settings, a console, running a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from rich.console import Console

from salesflow.settings import Settings

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
