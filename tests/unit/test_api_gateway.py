"""The API's Kafka gateway: a producer from the injected factory, started once on first use, stopped at
close; a start that fails is a 503 (``Unavailable``) and the next call tries again. The factory here
stands in for ``bootstrap.kafka_producer``; nothing here claims Kafka's behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from salesflow.api.gateway import KafkaGateway
from salesflow.api.http_errors import Unavailable
from salesflow.settings import Settings


class Factory:
    """Counts producers started and stopped; the first ``failures`` starts raise ``OSError``."""

    def __init__(self, failures: int = 0, start_delay: float = 0.0) -> None:
        self.failures = failures
        self.start_delay = start_delay
        self.started = 0
        self.stopped = 0

    @asynccontextmanager
    async def __call__(self, settings: Settings) -> AsyncIterator[Any]:
        try:
            await asyncio.sleep(self.start_delay)
            if self.failures:
                self.failures -= 1
                raise OSError("connection refused")
            self.started += 1
            yield object()
        finally:
            self.stopped += 1


async def test_one_producer_is_started_on_first_use_and_stopped_at_close() -> None:
    factory = Factory()
    gateway = KafkaGateway(Settings(), factory)
    assert factory.started == 0  # nothing connects until a replay needs Kafka
    first, second = await asyncio.gather(gateway.producer(), gateway.producer())
    assert first is second and factory.started == 1
    await gateway.close()
    assert factory.stopped == 1


async def test_a_failed_start_is_unavailable_and_the_next_call_tries_again() -> None:
    factory = Factory(failures=1)
    gateway = KafkaGateway(Settings(), factory)
    with pytest.raises(Unavailable):
        await gateway.producer()
    assert (factory.started, factory.stopped) == (0, 1)  # the half-started producer was stopped
    await gateway.producer()
    assert factory.started == 1
    await gateway.close()
    assert factory.stopped == 2


async def test_a_start_that_takes_too_long_is_unavailable_and_stopped() -> None:
    factory = Factory(start_delay=5.0)
    gateway = KafkaGateway(Settings(), factory, start_timeout=0.05)
    with pytest.raises(Unavailable):
        await gateway.producer()
    assert (factory.started, factory.stopped) == (0, 1)
    assert await gateway.check(0.05) == "unavailable: TimeoutError"
    await gateway.close()
