"""Handler spans: the dispatch of one event, each handler a child span of the event's span.

A subclass of the dispatcher's per-event run (``processor.dispatch._EventRun``): it starts a span as a
handler starts, records each failed attempt's exception on it, and ends it with the handler's
status. Used only while tracing is on; the untraced dispatch is left exactly as it was.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from salesflow.domain.events import CloudEvent
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers.registry import HandlerRegistry, RegisteredHandler
from salesflow.metrics import PipelineMetrics
from salesflow.processor.dispatch import DispatchResult, Ran, _EventRun, dispatch_now
from salesflow.processor.tally import BatchTally
from salesflow.tracing import conventions as c
from salesflow.tracing.exemplars import exemplar_of


@dataclass(slots=True)
class TracedEventRun(_EventRun):
    """``_EventRun`` with a span per handler (handlers of one event run one after another, so one slot)."""

    tracer: Any = None
    parent: Any = None  # the event span's Context
    span: Any = None

    # Explicit base calls: zero-argument super() does not work in a slots dataclass's methods.
    def handler(self, handler: RegisteredHandler) -> Ran | Awaitable[Ran]:
        self.span = self.tracer.start_span(
            f"handler {handler.name}", context=self.parent, attributes={c.HANDLER: handler.name}
        )
        with trace.use_span(self.span, end_on_exit=False):  # current while the handler is stepped here
            return _EventRun.handler(self, handler)

    def _count(self, handler: RegisteredHandler, kind: str) -> None:
        _EventRun._count(self, handler, kind)
        failure = sys.exception()  # called from the except clause of the failed attempt
        if self.span is not None and failure is not None:
            self.span.record_exception(failure, attributes={"salesflow.failure.kind": kind})

    def _done(self, handler: RegisteredHandler, started: float, ran: Ran) -> Ran:
        ran = _EventRun._done(self, handler, started, ran)
        span, report = self.span, ran[1]
        if span is None:
            return ran
        span.set_attribute("salesflow.handler.attempts", report.attempts)
        if report.status == "failed":
            span.set_status(Status(StatusCode.ERROR, report.error))
        if self.tally is not None:
            self.tally.take_exemplar("handler_duration", (handler.name,), exemplar_of(span))
        span.end()
        self.span = None
        return ran


def traced_dispatch_now(
    event: CloudEvent[Any],
    registry: HandlerRegistry,
    policy: RetryPolicy,
    metrics: PipelineMetrics,
    *,
    replay: bool,
    tally: BatchTally,
    tracer: Any,
    event_span: Any,
) -> DispatchResult | Awaitable[DispatchResult]:
    """``processor.dispatch.dispatch_now`` with handler spans under ``event_span``."""
    run_type = functools.partial(TracedEventRun, tracer=tracer, parent=trace.set_span_in_context(event_span))
    return dispatch_now(event, registry, policy, metrics, replay=replay, tally=tally, run_type=run_type)
