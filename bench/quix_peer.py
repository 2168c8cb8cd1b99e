"""The peer in ``make bench``: a Quix Streams application doing our worker's work on the same records.

For each record on the four source topics: decode and validate it against the v1 contract
(``decode_event``); run the handlers of its type (the functions of the default registry, as the worker
loads it); build the outcome (processed or failed, each handler's report, the facts) and publish it on
the outcomes topic keyed ``tenant:lead``, with its commands on their topics; or, for a record that is
not a valid event, publish a dead letter with the reason headers. The pieces are our public contract
(``decode_event``, the handler functions, ``outcome_record`` / ``command_record`` /
``dead_letter_record``); their composition is this module's, and the consuming, producing and
committing are Quix's own (its consumer group, topics, producer and checkpoints, at-least-once with
its default commit every 5 s). No engine of ours and no ``EventProcessor`` runs here.
``tests/unit/test_quix_equivalence.py`` holds its records to the worker core's, offline.

``python -m bench.quix_peer`` runs it with the settings from the environment until SIGTERM;
``peer_run`` measures it as ``bench.throughput.processor_run`` measures the worker.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from quixstreams import Application, message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import SerializationContext, Serializer, Topic

from bench import kafka_io
from bench.memory import RssSampler
from bench.throughput import ProcessorRun
from salesflow.domain.decoding import decode_event
from salesflow.domain.events import CloudEvent, EventType
from salesflow.domain.outcome import HandlerReport, Outcome, SourcePosition
from salesflow.domain.outputs import Command, Fact, FactModel, Output
from salesflow.domain.records import RecordIn, RecordOut
from salesflow.domain.topics import Topics
from salesflow.domain.upcasting import upcast
from salesflow.errors import DeadLetterReason, InvalidEvent
from salesflow.handlers import DEFAULT_REGISTRY, HandlerRegistry
from salesflow.handlers.plugins import load_handlers
from salesflow.handlers.registry import HandlerFn, RegisteredHandler
from salesflow.kafka_clients import librdkafka_options
from salesflow.processor.outbound import command_record, dead_letter_record, outcome_record
from salesflow.settings import Settings
from tests.harness import ROOT, settings_env

# What runs for one event type: (handler name, function, its success report), in registration order.
Handlers = Mapping[EventType, tuple[tuple[str, HandlerFn, HandlerReport], ...]]


def handler_table(registry: HandlerRegistry) -> Handlers:
    """The registry's handlers per type. Only pure ones (event in, outputs out): the peer injects
    nothing, and the default registry's handlers are all pure."""
    table = {}
    for event_type in EventType:
        handlers = registry.handlers_for(event_type)
        for handler in handlers:
            if not handler.signature.pure:
                raise ValueError(f"handler {handler.name!r} has dependencies; the Quix peer runs pure handlers only")
        table[event_type] = tuple(
            (h.name, _at_its_version(h), HandlerReport(handler=h.name, status="ok", attempts=1)) for h in handlers
        )
    return table


def _at_its_version(handler: RegisteredHandler) -> HandlerFn:
    """The handler's function, fed the event upcast to the payload version it takes (as dispatch does)."""
    fn, takes = handler.fn, handler.takes
    if takes is None:
        return fn
    return lambda event: fn(upcast(event, takes))


def run_to_end(awaitable: Any) -> Sequence[Output] | None:
    """A pure handler's result: its coroutine never waits on anything, so one ``send`` runs it to the
    end, without an event loop (Quix's functions are synchronous)."""
    coroutine = cast(Coroutine[Any, Any, Sequence[Output] | None], awaitable)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(Sequence[Output] | None, done.value)
    coroutine.close()
    raise RuntimeError("a handler waited on I/O; the Quix peer runs pure handlers only")


def build_outcome(
    event: CloudEvent[Any], record: RecordIn, reports: list[HandlerReport], facts: list[FactModel]
) -> Outcome:
    """The outcome record's content, built as ``EventProcessor._outcome`` builds it (the one place to
    change when the outcome type changes). No replay detection here: every record is a first delivery."""
    failed = [r for r in reports if r.status == "failed"]
    return Outcome(
        event_id=event.id,
        type=event.type.value,
        tenant_id=event.tenantid,
        lead_id=event.lead_id,
        status="failed" if failed else "processed",
        occurred_at=event.time,
        processed_at=datetime.now(UTC),
        attempts=1,  # no retries: a pure handler's error is final here
        error_message="; ".join(f"{r.handler}: {r.error}" for r in failed) or None,
        replay=False,
        position=SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset),
        handlers=tuple(reports),
        facts=tuple(facts),
    )


@dataclass(frozen=True)
class PeerWork:
    """The per-record work: one source record in, the records to publish out."""

    topics: Topics
    group: str
    max_event_bytes: int
    handlers: Handlers

    def outputs(self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any) -> list[RecordOut]:
        """Quix's ``apply(..., metadata=True, expand=True)`` callback: each record out becomes a row."""
        ctx = message_context()
        record = RecordIn(ctx.topic, ctx.partition, ctx.offset, timestamp, key, value, tuple(headers or ()))
        try:
            event = decode_event(value, record.headers, max_bytes=self.max_event_bytes)
            return self._processed(event, record)
        except InvalidEvent as error:
            return [dead_letter_record(record, error, self.group, self.topics)]
        except Exception as exc:  # a bug is dead-lettered as the worker does: the stream goes on
            bug = InvalidEvent(DeadLetterReason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
            return [dead_letter_record(record, bug, self.group, self.topics)]

    def _processed(self, event: CloudEvent[Any], record: RecordIn) -> list[RecordOut]:
        reports: list[HandlerReport] = []
        facts: list[FactModel] = []
        commands: list[Command] = []
        for name, fn, ok in self.handlers[event.type]:
            try:
                produced = run_to_end(fn(event)) or ()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
                reports.append(HandlerReport(handler=name, status="failed", attempts=1, error=error))
                continue
            reports.append(ok)
            for output in produced:  # observations are metrics: the peer keeps none
                if isinstance(output, Fact):
                    facts.append(output)
                elif isinstance(output, Command):
                    commands.append(output)
        outcome = build_outcome(event, record, reports, facts)
        return [outcome_record(outcome, self.topics), *(command_record(c, self.topics) for c in commands)]


class RecordValue(Serializer):
    """An output row is a ``RecordOut`` whose value our record builders already encoded."""

    def __call__(self, value: RecordOut, ctx: SerializationContext) -> bytes | None:  # type: ignore[override]
        return value.value  # None for a dead-lettered tombstone, which stays one, as the worker sends it


def add_pipeline(app: Application, source: Topic, outputs: Mapping[str, Topic], work: PeerWork) -> StreamingDataFrame:
    """One source topic's dataframe: the per-record work, then each record out to its topic with its
    key and headers. The timestamp is left to the client (0: librdkafka stamps the send time), so the
    outcome records' timestamps mean what the worker's mean; Quix would otherwise copy the source's."""
    sdf = app.dataframe(source)
    sdf = sdf.apply(work.outputs, expand=True, metadata=True)
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: list(value.headers))
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: 0)
    return sdf.to_topic(lambda value, key, timestamp, headers: outputs[value.topic], key=lambda value: value.key)


def output_topics(topics: Topics) -> tuple[str, ...]:
    return (topics.outcomes, topics.deadletter, topics.autopilot_commands, topics.notifications)


def build_app(settings: Settings, registry: HandlerRegistry = DEFAULT_REGISTRY) -> Application:
    """The peer for these settings: group ``settings.processor_group``, from the earliest offset, with
    the producer options that decide delivery set as the worker sets them (idempotent, acks=all, 5 ms
    linger, Java's murmur2 partitions for a key); everything else Quix's defaults."""
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(librdkafka_options(settings)),
        consumer_group=settings.processor_group,
        auto_offset_reset="earliest",
        producer_extra_config={
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "partitioner": "murmur2_random",
        },
        state_dir=f"{settings.worker_data_dir}-quix",
        auto_create_topics=False,
    )
    topics = settings.topics
    work = PeerWork(topics, settings.processor_group, settings.max_event_bytes, handler_table(registry))
    outputs = {name: app.topic(name, value_serializer=RecordValue()) for name in output_topics(topics)}
    # One dataframe per source topic, as the worker reads them: independent, no time alignment across
    # topics (which ``concat`` would switch on).
    for name in topics.sources:
        add_pipeline(app, app.topic(name, value_deserializer="bytes"), outputs, work)
    return app


def main() -> None:
    settings = Settings()
    load_handlers(settings, DEFAULT_REGISTRY)  # the configured modules and plugins, as the worker loads them
    build_app(settings).run()


async def peer_run(source: Settings, count: int, logs: Path, timeout: float) -> ProcessorRun:
    """The peer as a process of its own, a fresh consumer group, ``count`` events already on the
    source topics: events/s from the first outcome record to the last, by their own timestamps (the
    measuring rule of ``bench.throughput.processor_run``)."""
    tag = uuid.uuid4().hex[:6]
    settings = source.model_copy(
        update={"processor_group": f"quix-{tag}", "worker_data_dir": f"{source.worker_data_dir}-{tag}"}
    )
    outcomes = settings.topics.outcomes
    start = await kafka_io.end_offsets(settings, [outcomes])
    process = _spawn(settings, logs / f"quix-peer-{tag}.log")
    rss = RssSampler(process.pid).start()
    try:
        seen, first_ms, last_ms = await kafka_io.count_until(settings, outcomes, start, count, timeout)
    finally:
        peak = rss.peak_mb()
        rss.stop()
        await asyncio.to_thread(_stop, process)
    stop = await kafka_io.end_offsets(settings, [outcomes])
    return ProcessorRun((seen - 1) / max((last_ms - first_ms) / 1000, 1e-3), peak, start, stop)


def _spawn(settings: Settings, out: Path) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "bench.quix_peer"], env=settings_env(settings), stdout=log, stderr=log, cwd=ROOT
        )


def _stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (Quix commits its checkpoint and leaves the group), SIGKILL if it does not go."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":
    main()
