"""Run every registered handler of an event, with retries for transient errors.

What is retried and how is the failure policy's (``salesflow.failure_policy``); this applies it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from salesflow.domain.events import CloudEvent
from salesflow.domain.outcome import HandlerReport
from salesflow.domain.outputs import Command, Fact, FactModel, Observation, Output
from salesflow.failure_policy import TRANSIENT_ERRORS, RetryPolicy
from salesflow.handlers.registry import HandlerRegistry, RegisteredHandler
from salesflow.metrics import PipelineMetrics
from salesflow.processor.tally import BatchTally

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class DispatchResult:
    """The handlers' outputs and reports, in run order. The outputs by kind, the failed reports and the
    most attempts any handler took are sorted out as they are added: the core reads them for every
    event, so each output's class is looked up once (``_output_kind``), not tested per list."""

    outputs: list[Output] = field(default_factory=list)
    reports: list[HandlerReport] = field(default_factory=list)
    facts: list[FactModel] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    failed: list[HandlerReport] = field(default_factory=list)
    attempts: int = 1

    def add(self, outputs: list[Output], report: HandlerReport) -> None:
        self.outputs.extend(outputs)
        for output in outputs:
            kind = _output_kind(type(output))
            if kind is not None:
                getattr(self, kind).append(output)
        self.reports.append(report)
        if report.status == "failed":
            self.failed.append(report)
        # the most any handler took (0: none ran, all were already applied); 1 with no handler at all
        self.attempts = report.attempts if len(self.reports) == 1 else max(self.attempts, report.attempts)

    @property
    def error_message(self) -> str | None:
        return "; ".join(f"{r.handler}: {r.error}" for r in self.failed) or None


@functools.cache
def _output_kind(cls: type) -> str | None:
    """Which list of ``DispatchResult`` an output of class ``cls`` goes to (None: none, it is ignored)."""
    for base, kind in ((Fact, "facts"), (Command, "commands"), (Observation, "observations")):
        if issubclass(cls, base):
            return kind
    return None


async def dispatch(
    event: CloudEvent[Any],
    registry: HandlerRegistry,
    policy: RetryPolicy,
    metrics: PipelineMetrics,
    sleep: Sleep = asyncio.sleep,
    *,
    replay: bool = False,
    tally: BatchTally | None = None,
) -> DispatchResult:
    """Run the handlers of ``event``'s type, one after another, and gather their outputs and reports.

    ``replay``: the event was processed before (a re-delivery or an offset reset); handlers declare
    whether a replay recomputes them or skips them (``on_replay``). A handler with dependencies must
    come from a bound registry (``handlers.injection.bind``); a handler that did not run because its
    effects were already applied reports ``ok`` with 0 attempts. ``tally``: the batch's, which then
    takes the handlers' durations and applies them once per batch; without one they are observed now."""
    result = DispatchResult()
    for handler in registry.handlers_for(event.type):
        result.add(*await _run_with_retries(handler, event, policy, metrics, sleep, replay, tally))
    return result


async def _run_with_retries(
    handler: RegisteredHandler,
    event: CloudEvent[Any],
    policy: RetryPolicy,
    metrics: PipelineMetrics,
    sleep: Sleep,
    replay: bool,
    tally: BatchTally | None,
) -> tuple[list[Output], HandlerReport]:
    attempt = 0
    invoke = handler.invoke
    while True:
        attempt += 1
        started = time.perf_counter()
        try:
            if invoke is None:  # a pure handler: called as it is, nothing per event around it
                outputs = list(await handler.fn(event) or ())
            else:
                outputs, ran = await invoke(event, replay)
                if not ran:  # already applied (or skipped on replay): attempts 0 says it did not run
                    return [], ok_report(handler.name, 0)
            _check_observations(outputs, metrics)
        except TRANSIENT_ERRORS as exc:
            metrics.child(metrics.handler_errors, handler.name, "transient").inc()
            if policy.gives_up_after(attempt):
                return [], _failed(handler, attempt, exc)
            await sleep(policy.delay(attempt))
        except Exception as exc:
            metrics.child(metrics.handler_errors, handler.name, "permanent").inc()
            return [], _failed(handler, attempt, exc)
        else:
            return outputs, ok_report(handler.name, attempt)
        finally:
            elapsed = time.perf_counter() - started
            if tally is None:
                metrics.child(metrics.handler_duration, handler.name).observe(elapsed)
            else:
                tally.observe("handler_duration", elapsed, handler.name)


def _check_observations(outputs: list[Output], metrics: PipelineMetrics) -> None:
    """Raises ``ValueError`` (a permanent failure of the handler, so of this event only) for an
    observation the metrics cannot take; see ``PipelineMetrics.check_observation``."""
    for output in outputs:
        if _output_kind(type(output)) == "observations":
            observation = cast(Observation, output)
            metrics.check_observation(observation.metric, observation.value, observation.labels)


@functools.cache
def ok_report(handler: str, attempts: int) -> HandlerReport:
    """A handler's success report. Reports are frozen, so one per (handler, attempts) serves every
    event."""
    return HandlerReport(handler=handler, status="ok", attempts=attempts)


def _failed(handler: RegisteredHandler, attempts: int, exc: BaseException) -> HandlerReport:
    return HandlerReport(
        handler=handler.name, status="failed", attempts=attempts, error=f"{type(exc).__name__}: {exc}"[:2000]
    )
