"""``run_handlers``: an event through the handlers, the way the worker runs it, without Kafka.

The same ``dispatch`` and ``RetryPolicy`` as the worker, the same binding of dependencies
(``handlers.injection``) and the same once-per-event record for handlers that take ``db``; only the
transport is missing. The result has the outputs (facts, commands, observations) and one report per
handler (``ok`` or ``failed`` with its error and attempts; 0 attempts: skipped, already applied).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from salesflow.domain.events import CloudEvent
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers.injection import Resources, bind
from salesflow.handlers.registry import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.metrics import PipelineMetrics
from salesflow.processor.dispatch import DispatchResult, dispatch
from salesflow.settings import Settings

# Retries as the worker's, with short waits: a test does not need a real backoff to see one.
TEST_POLICY = RetryPolicy(max_attempts=3, backoff_seconds=0.01, backoff_max_seconds=0.05)


async def run_handlers(
    event: CloudEvent[Any],
    *,
    registry: HandlerRegistry = DEFAULT_REGISTRY,
    resources: Resources | None = None,
    settings: Settings | None = None,
    replay: bool = False,
    policy: RetryPolicy = TEST_POLICY,
    metrics: PipelineMetrics | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> DispatchResult:
    """Run every handler ``registry`` has for ``event``'s type; ``replay`` as the worker would flag it.

    Dependencies come from ``resources`` (the ``handler_resources`` fixture gives one on a throwaway
    database), or from ``settings`` (resources made for this call and closed after it)."""
    owned = resources is None
    used = resources or Resources(settings or Settings())
    try:
        bound = bind(registry, used)
        return await dispatch(event, bound, policy, metrics or PipelineMetrics(), sleep, replay=replay)
    finally:
        if owned:
            await used.aclose()
