"""Fixtures the outbox tests share: a service database with the outbox table, and the relays a test
starts (stopped at its end). The kit behind them is ``test_outbox_kit``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.infra import Endpoints
from tests.integration.test_outbox_kit import Relays, service_db


@pytest.fixture
async def service(endpoints: Endpoints) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A service's own database with the outbox migration applied: its URL and an engine."""
    async with service_db(endpoints) as made:
        yield made


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[Relays]:
    made = Relays(tmp_path)
    yield made
    made.stop_all()
