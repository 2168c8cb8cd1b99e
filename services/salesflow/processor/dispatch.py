"""Run every registered handler of an event, with retries for transient errors.

What is retried and how is the failure policy's (``salesflow.failure_policy``); this applies it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
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


def dispatch_now(
    event: CloudEvent[Any],
    registry: HandlerRegistry,
    policy: RetryPolicy,
    metrics: PipelineMetrics,
    sleep: Sleep = asyncio.sleep,
    *,
    replay: bool = False,
    tally: BatchTally | None = None,
    run_type: Callable[..., _EventRun] | None = None,
) -> DispatchResult | Awaitable[DispatchResult]:
    """Run the handlers of ``event``'s type, one after another, and gather their outputs and reports.

    Each handler's coroutine is stepped here, without an event loop: one that never waits (every
    built-in handler, and any pure one) completes at once, and the result comes back with no ``await``
    per event. The first that waits on I/O (a ``db`` handler, a plugin's HTTP call), or a transient
    error to back off from, hands the rest to the event loop: the return value is then an awaitable.

    ``replay``: the event was processed before (a re-delivery or an offset reset); handlers declare
    whether a replay recomputes them or skips them (``on_replay``). A handler with dependencies must
    come from a bound registry (``handlers.injection.bind``); a handler that did not run because its
    effects were already applied reports ``ok`` with 0 attempts. Each handler sees the event upcast to
    the payload version it takes (``InvalidEvent`` when none leads there: the record is dead-lettered).
    ``tally``: the batch's, which then takes the handlers' durations and applies them once per batch;
    without one they are observed now. ``run_type``: a subclass of ``_EventRun`` (``tracing``'s)."""
    run = (run_type or _EventRun)(event, policy, metrics, sleep, replay, tally, registry.views_of(event))
    result = DispatchResult()
    handlers = registry.handlers_for(event.type)
    for index, handler in enumerate(handlers):
        ran = run.handler(handler)
        if not isinstance(ran, tuple):
            return run.finish(result, ran, handlers[index + 1 :])
        result.add(*ran)
    return result


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
    """``dispatch_now``, awaited where it has to be (the test kit's and the tests' entry point)."""
    done = dispatch_now(event, registry, policy, metrics, sleep, replay=replay, tally=tally)
    return done if isinstance(done, DispatchResult) else await done


Step = tuple[list[Output], bool]  # a handler's outputs, and whether it ran (False: already applied)
Ran = tuple[list[Output], HandlerReport]  # a handler's outputs and report, once it is done with


@dataclass
class _Waiting:
    """A handler's coroutine that waited on something at its first step: what it yielded."""

    coroutine: Coroutine[Any, Any, Any]
    yielded: Any


@dataclass(slots=True)  # one per event: a frozen dataclass's __init__ sets each field the slow way
class _EventRun:
    """One event's handlers, run under the failure policy (the rule is ``failure_policy``'s; this
    applies it): retries with backoff for a transient error, none for any other."""

    event: CloudEvent[Any]
    policy: RetryPolicy
    metrics: PipelineMetrics
    sleep: Sleep
    replay: bool
    tally: BatchTally | None
    # The event upcast to the version each handler takes, by handler name (``HandlerRegistry.views_of``);
    # None when every handler takes it as it is.
    views: dict[str, CloudEvent[Any]] | None = None

    def handler(self, handler: RegisteredHandler) -> Ran | Awaitable[Ran]:
        """One handler: its outputs and report now, or an awaitable of them when it waits on I/O or
        has to back off from a transient error before trying again."""
        started = time.perf_counter()
        try:
            done = self._step(handler)
        except TRANSIENT_ERRORS as exc:
            self._count(handler, "transient")
            if not self.policy.gives_up_after(1):
                return self._retrying(handler, started, attempt=1)
            return self._done(handler, started, ([], _failed(handler, 1, exc)))
        except Exception as exc:
            self._count(handler, "permanent")
            return self._done(handler, started, ([], _failed(handler, 1, exc)))
        if isinstance(done, _Waiting):
            return self._resumed(done, handler, started)
        return self._done(handler, started, self._checked(done, handler))

    async def finish(
        self, result: DispatchResult, later: Awaitable[Ran], rest: Sequence[RegisteredHandler]
    ) -> DispatchResult:
        """The handler that waited, then the ones after it, in order, under the event loop."""
        result.add(*await later)
        for handler in rest:
            ran = self.handler(handler)
            result.add(*(ran if isinstance(ran, tuple) else await ran))
        return result

    def _step(self, handler: RegisteredHandler) -> Step | _Waiting:
        """One attempt, stepped without an event loop: its outputs, or the coroutine that waits."""
        coroutine = self._call(handler)
        try:
            yielded = coroutine.send(None)
        except StopIteration as stop:
            return _as_step(handler, stop.value)
        return _Waiting(coroutine, yielded)

    async def _resumed(self, waiting: _Waiting, handler: RegisteredHandler, started: float) -> Ran:
        """The first attempt, gone on under the event loop; retried from there as ``_retrying`` does."""
        try:
            step = _as_step(handler, await _resume(waiting))
        except TRANSIENT_ERRORS as exc:
            self._count(handler, "transient")
            if not self.policy.gives_up_after(1):
                return await self._retrying(handler, started, attempt=1)
            return self._done(handler, started, ([], _failed(handler, 1, exc)))
        except Exception as exc:
            self._count(handler, "permanent")
            return self._done(handler, started, ([], _failed(handler, 1, exc)))
        return self._done(handler, started, self._checked(step, handler))

    async def _retrying(self, handler: RegisteredHandler, started: float, *, attempt: int) -> Ran:
        """After ``attempt`` failed with a transient error: back off and try again, until it succeeds,
        fails for good, or the policy gives up."""
        while True:
            await self.sleep(self.policy.delay(attempt))
            attempt += 1
            try:
                event = self.event if self.views is None else self.views[handler.name]
                coroutine = handler.fn(event) if handler.invoke is None else handler.invoke(event, self.replay)
                step = _as_step(handler, await coroutine)
                if not step[1]:
                    return self._done(handler, started, ([], ok_report(handler.name, 0)))
                _check_observations(step[0], self.metrics)
            except TRANSIENT_ERRORS as exc:
                self._count(handler, "transient")
                if self.policy.gives_up_after(attempt):
                    return self._done(handler, started, ([], _failed(handler, attempt, exc)))
            except Exception as exc:
                self._count(handler, "permanent")
                return self._done(handler, started, ([], _failed(handler, attempt, exc)))
            else:
                return self._done(handler, started, (step[0], ok_report(handler.name, attempt)))

    def _checked(self, step: Step, handler: RegisteredHandler) -> Ran:
        """A first attempt's outputs and report (an observation the metrics cannot take: a failure)."""
        outputs, ran = step
        if not ran:  # already applied (or skipped on replay): attempts 0 says it did not run
            return [], ok_report(handler.name, 0)
        try:
            _check_observations(outputs, self.metrics)
        except ValueError as exc:
            self._count(handler, "permanent")
            return [], _failed(handler, 1, exc)
        return outputs, ok_report(handler.name, 1)

    def _call(self, handler: RegisteredHandler) -> Coroutine[Any, Any, Any]:
        """A new attempt's coroutine: a pure handler called as it is, a bound one through its invoker."""
        event = self.event if self.views is None else self.views[handler.name]
        called = handler.fn(event) if handler.invoke is None else handler.invoke(event, self.replay)
        return cast(Coroutine[Any, Any, Any], called)

    def _count(self, handler: RegisteredHandler, kind: str) -> None:
        self.metrics.child(self.metrics.handler_errors, handler.name, kind).inc()

    def _done(self, handler: RegisteredHandler, started: float, ran: Ran) -> Ran:
        """``ran``, with the handler's duration observed (to the batch's tally when there is one)."""
        elapsed = time.perf_counter() - started
        if self.tally is None:
            self.metrics.child(self.metrics.handler_duration, handler.name).observe(elapsed)
        else:
            self.tally.observe("handler_duration", elapsed, handler.name)
        return ran


def _as_step(handler: RegisteredHandler, value: Any) -> Step:
    """What a finished attempt returned: a pure handler its outputs (or None); a bound one, through its
    invoker, (outputs, whether it ran)."""
    if handler.invoke is None:
        return list(value or ()), True
    outputs, ran = value
    return outputs, ran


async def _resume(waiting: _Waiting) -> Any:
    """Go on with a coroutine that waited at its first step, as an asyncio Task would: wait for what it
    yielded (a future, or nothing for a bare yield), then send it on, until it returns."""
    coroutine, yielded = waiting.coroutine, waiting.yielded
    while True:
        if getattr(yielded, "_asyncio_future_blocking", False):
            yielded._asyncio_future_blocking = False  # as a Task does with the future it is handed
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([yielded])
        except BaseException as exc:  # cancelled while it waits: it is told, as a Task tells it
            coroutine.throw(exc)
            raise
        try:
            yielded = coroutine.send(None)
        except StopIteration as stop:
            return stop.value


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
