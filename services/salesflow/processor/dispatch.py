"""Run every registered handler of an event, with retries for transient errors.

The failure policy, written once: a handler that raises a transient error (``TransientHandlerError``,
``TimeoutError``, ``ConnectionError``) is retried with bounded exponential backoff and full jitter; any
other exception is permanent and not retried. A handler still failing after its attempts makes the
event ``failed`` with the error kept; the other handlers' outputs still count, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from salesflow.domain.events import CloudEvent
from salesflow.domain.outcome import HandlerReport
from salesflow.domain.outputs import Output
from salesflow.errors import TransientHandlerError
from salesflow.handlers.registry import HandlerRegistry, RegisteredHandler
from salesflow.metrics import PipelineMetrics

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientHandlerError, TimeoutError, ConnectionError)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_seconds: float = 0.1
    backoff_max_seconds: float = 2.0

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to the capped exponential backoff for this attempt."""
        return random.uniform(0, min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1)))


@dataclass
class DispatchResult:
    outputs: list[Output] = field(default_factory=list)
    reports: list[HandlerReport] = field(default_factory=list)

    @property
    def failed(self) -> list[HandlerReport]:
        return [r for r in self.reports if r.status == "failed"]

    @property
    def attempts(self) -> int:
        return max((r.attempts for r in self.reports), default=1)

    @property
    def error_message(self) -> str | None:
        return "; ".join(f"{r.handler}: {r.error}" for r in self.failed) or None


async def dispatch(
    event: CloudEvent[Any],
    registry: HandlerRegistry,
    policy: RetryPolicy,
    metrics: PipelineMetrics,
    sleep: Sleep = asyncio.sleep,
) -> DispatchResult:
    """Run the handlers of ``event``'s type, one after another, and gather their outputs and reports."""
    result = DispatchResult()
    for handler in registry.handlers_for(event.type):
        outputs, report = await _run_with_retries(handler, event, policy, metrics, sleep)
        result.outputs.extend(outputs)
        result.reports.append(report)
    return result


async def _run_with_retries(
    handler: RegisteredHandler, event: CloudEvent[Any], policy: RetryPolicy, metrics: PipelineMetrics, sleep: Sleep
) -> tuple[list[Output], HandlerReport]:
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter()
        try:
            outputs = list(await handler.fn(event))
        except TRANSIENT_ERRORS as exc:
            metrics.handler_errors.labels(handler.name, "transient").inc()
            if attempt >= policy.max_attempts:
                return [], _failed(handler, attempt, exc)
            await sleep(policy.delay(attempt))
        except Exception as exc:
            metrics.handler_errors.labels(handler.name, "permanent").inc()
            return [], _failed(handler, attempt, exc)
        else:
            return outputs, HandlerReport(handler=handler.name, status="ok", attempts=attempt)
        finally:
            metrics.handler_duration.labels(handler.name).observe(time.perf_counter() - started)


def _failed(handler: RegisteredHandler, attempts: int, exc: BaseException) -> HandlerReport:
    return HandlerReport(
        handler=handler.name, status="failed", attempts=attempts, error=f"{type(exc).__name__}: {exc}"[:2000]
    )
