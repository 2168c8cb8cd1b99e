"""The batch core: records in, the records to publish out (per input record), metrics per batch.

Decoding, replay detection (watermarks), dispatch, outcomes, commands and dead letters. No Kafka
client here: the engines (``processor.engines``) read, publish and commit; this decides.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import CloudEvent
from salesflow.domain.outcome import Outcome, SourcePosition
from salesflow.domain.records import REPLAY_HEADER, RecordIn, RecordOut
from salesflow.domain.topics import Topics
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent
from salesflow.failure_policy import RetryPolicy
from salesflow.handlers.registry import HandlerRegistry
from salesflow.logs import record_fields
from salesflow.metrics import PipelineMetrics
from salesflow.processor.dispatch import DispatchResult, dispatch_now
from salesflow.processor.outbound import command_record, dead_letter_record, outcome_record
from salesflow.processor.tally import BatchTally
from salesflow.processor.watermarks import ReplayWatermarks
from salesflow.tracing import state as tracing

Clock = Callable[[], datetime]
DEFAULT_POLICY = RetryPolicy()

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventProcessor:
    """Turns each source record into its outcome (plus commands), or a dead letter. Never raises for
    bad input: the stream must go on."""

    def __init__(
        self,
        *,
        registry: HandlerRegistry,
        metrics: PipelineMetrics,
        topics: Topics,
        group: str,
        max_event_bytes: int,
        policy: RetryPolicy = DEFAULT_POLICY,
        clock: Clock = utcnow,
        watermarks: ReplayWatermarks | None = None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.topics = topics
        self.group = group
        self.max_event_bytes = max_event_bytes
        self.policy = policy
        self.clock = clock
        self.watermarks = watermarks or ReplayWatermarks(group, topics.watermarks)
        self._histograms = metrics.histogram_names()

    async def process_batch(self, records: Sequence[RecordIn]) -> list[list[RecordOut]]:
        """For each record, in order, the records to publish; the batch's metrics are applied once at
        the end. Never raises for one record: a bad one becomes a dead letter, the others go on.

        A record whose handlers all finish without waiting (the built-in ones) is done here with no
        ``await``; only one whose handlers wait on I/O goes through the event loop. With tracing on
        (checked here, once per batch), ``processor.traced`` does the same with spans."""
        if tracing.TRACER is not None:
            from salesflow.processor.traced import process_batch_traced

            return await process_batch_traced(self, records, tracing.TRACER)
        tally = BatchTally()
        out: list[list[RecordOut]] = []
        for record in records:
            done = self._process_one(record, tally)
            out.append(done if isinstance(done, list) else await done)
        tally.apply(self.metrics, self.metrics.child)
        return out

    def _process_one(self, record: RecordIn, tally: BatchTally) -> list[RecordOut] | Awaitable[list[RecordOut]]:
        tally.inc("events_consumed", record.topic)
        try:
            event = decode_event(record.value, record.headers, max_bytes=self.max_event_bytes)
            replay = self.is_replay(record)
            result = dispatch_now(event, self.registry, self.policy, self.metrics, replay=replay, tally=tally)
            if not isinstance(result, DispatchResult):
                return self._process_later(record, event, result, replay, tally)
            return self._outputs(record, event, result, replay, tally)
        except Exception as exc:
            return self._refused(record, exc, tally)

    async def _process_later(
        self,
        record: RecordIn,
        event: CloudEvent[Any],
        waiting: Awaitable[DispatchResult],
        replay: bool,
        tally: BatchTally,
    ) -> list[RecordOut]:
        try:
            return self._outputs(record, event, await waiting, replay, tally)
        except Exception as exc:
            return self._refused(record, exc, tally)

    def _refused(self, record: RecordIn, exc: Exception, tally: BatchTally) -> list[RecordOut]:
        """The dead letter of a record that is not an event, or whose processing raised (a bug)."""
        if isinstance(exc, InvalidEvent):
            return self._dead_letter(record, exc, tally)
        log.error("processing raised %s", type(exc).__name__, exc_info=exc, extra=record_fields(record))
        bug = InvalidEvent(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        return self._dead_letter(record, bug, tally)

    def _dead_letter(self, record: RecordIn, error: InvalidEvent, tally: BatchTally) -> list[RecordOut]:
        tally.inc("dead_letters", error.reason.value)
        log.warning(
            "dead-lettered: %s",
            error.detail,
            extra=record_fields(record, event_id=error.event_id, reason=error.reason.value),
        )
        return [dead_letter_record(record, error, self.group, self.topics)]

    def _outputs(
        self, record: RecordIn, event: CloudEvent[Any], result: DispatchResult, replay: bool, tally: BatchTally
    ) -> list[RecordOut]:
        outcome = self._outcome(event, record, result, replay)
        self._record_metrics(outcome, result, tally)
        if result.failed:
            log.warning(
                "event failed: %s",
                outcome.error_message,
                extra=record_fields(
                    record,
                    event_id=str(event.id),
                    event_type=event.type.value,
                    tenant_id=event.tenantid,
                    status="failed",
                ),
            )
        return [outcome_record(outcome, self.topics), *(command_record(c, self.topics) for c in result.commands)]

    def is_replay(self, record: RecordIn) -> bool:
        """Re-published on purpose (the replay header), or at or below the partition's watermark."""
        return record.header(REPLAY_HEADER) is not None or self.watermarks.is_replay(
            record.topic, record.partition, record.offset
        )

    def _outcome(self, event: CloudEvent[Any], record: RecordIn, result: DispatchResult, replay: bool) -> Outcome:
        # Built from values already validated (the decoded event, the handlers' facts, which check
        # themselves): a struct's constructor validates nothing again.
        return Outcome(
            event_id=event.id,
            type=event.type.value,
            tenant_id=event.tenantid,
            lead_id=event.lead_id,
            status="failed" if result.failed else "processed",
            occurred_at=event.time,
            processed_at=self.clock(),
            attempts=result.attempts,
            error_message=result.error_message,
            replay=replay,
            position=SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset),
            handlers=tuple(result.reports),
            facts=tuple(result.facts),
        )

    def _record_metrics(self, outcome: Outcome, result: DispatchResult, tally: BatchTally) -> None:
        tally.inc("events_processed", outcome.type, outcome.status)
        if outcome.replay:
            # Replays recompute facts but must not count business metrics twice or burn the freshness SLO.
            tally.inc("replays", outcome.type)
            return
        freshness = (outcome.processed_at - outcome.occurred_at).total_seconds()
        tally.observe("freshness", max(freshness, 0.0), outcome.type)
        tally.business_observations(result.observations, self._histograms)
