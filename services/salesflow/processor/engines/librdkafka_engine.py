"""The batch engine (``SALESFLOW_WORKER_ENGINE=batch``): the worker's edge on librdkafka.

A plain synchronous loop: read a batch (what has arrived, up to its size), run it through the batch core
(an event loop only for the handlers, which are coroutines), hand its records to librdkafka's
idempotent producer (``acks=all``), and commit what the commit rule (``processor.commits``) frees:
offsets whose records are acknowledged and whose watermarks are written, per partition in read
order. The next batch is read while the previous one is still being delivered. A failed delivery
stops the worker without committing past it. SIGTERM/SIGINT: stop reading, deliver what is in
flight, write the marks, commit, leave the group, exit 0.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import time
from collections.abc import Callable
from types import FrameType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from salesflow.domain.records import RecordIn, RecordOut
from salesflow.failure_policy import DRAIN_SECONDS
from salesflow.membership import EXIT_FENCED, fenced_message
from salesflow.processor.commits import CommitLedger, Partition, Ticket
from salesflow.processor.core import EventProcessor
from salesflow.processor.engines.librdkafka import (
    consumer_config,
    delivery_problem,
    is_fatal,
    producer_config,
    record_in,
)
from salesflow.processor.settling import Settling
from salesflow.settings import Settings

log = logging.getLogger(__name__)

# Source records read but not yet settled: bounds memory under a backlog (backpressure).
MAX_IN_FLIGHT = 20_000
COMMIT_INTERVAL_SECONDS = 0.5
IN_FLIGHT_WAIT_SECONDS = 0.002


class DeliveryFailed(Exception):
    """The broker refused or never acknowledged a record: its source offset must not be committed."""


class LibrdkafkaEngine:
    """One consumer and one producer, driven by ``run()`` on the calling thread."""

    def __init__(self, settings: Settings, processor: EventProcessor) -> None:
        self.settings = settings
        self.processor = processor
        self.ledger = CommitLedger()
        self.settling = Settling(settings, processor)
        self.stopping = False
        self.ready = False
        self._loop = asyncio.new_event_loop()  # only for the handlers' coroutines
        self.consumer = Consumer(consumer_config(settings, self._client_error))
        self.producer = Producer(producer_config(settings, self._client_error))
        self._last_commit = time.monotonic()

    def run(self) -> int:
        """Process until stopped; 0 after a clean drain, 1 after a failure (nothing committed past it)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        self.consumer.subscribe(
            list(self.settings.topics.sources), on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )
        try:
            while not self.stopping and self.ledger.failure is None:
                self._step()
            if self.ledger.failure is None:
                self._settle_all()
            if isinstance(self.ledger.failure, InstanceFenced):
                log.critical(
                    "%s (librdkafka: %s)",
                    fenced_message(self.settings.instance_id or "", self.settings.processor_group),
                    self.ledger.failure,
                )
                return EXIT_FENCED
            if self.ledger.failure is not None:
                log.critical("stopping without commit: %r; the records will be read again", self.ledger.failure)
                return 1
            log.info("drained and committed; leaving the group")
            return 0
        finally:
            self.consumer.close()
            self._loop.close()

    def _step(self) -> None:
        messages = self._read()
        records = [record_in(m) for m in messages if not self._consume_error(m)]
        if records:
            outgoing = self._loop.run_until_complete(self.processor.process_batch(records))
            self._publish(records, outgoing)
            self.settling.processed(records)
        self.producer.poll(0)
        while self.ledger.in_flight() > MAX_IN_FLIGHT and self.ledger.failure is None:
            self.producer.poll(0.05)  # backpressure: let the broker catch up before reading more
            self._write_marks()
        self._write_marks()
        now = time.monotonic()
        if now - self._last_commit >= COMMIT_INTERVAL_SECONDS:
            self._commit(asynchronous=True)
            self._last_commit = now
        if self.settling.lag.due():
            self._report_lag()

    def _publish(self, records: list[RecordIn], outgoing: list[list[RecordOut]]) -> None:
        """Hand the batch's records to the producer, with one ticket per source partition: the batch's
        records of a partition are settled together, once every record they produced is acknowledged
        (a ticket per source record cost a measured share of the worker's time, for no earlier commit:
        a partition's offsets are committed in read order anyway). Counted before the first produce,
        since a full queue makes ``_produce`` serve delivery reports."""
        counts: dict[Partition, list[int]] = {}  # partition -> [last offset read, records produced]
        for record, outs in zip(records, outgoing, strict=True):
            entry = counts.setdefault((record.topic, record.partition), [record.offset, 0])
            entry[0] = record.offset
            entry[1] += len(outs)
        callbacks = {
            key: functools.partial(self._delivered, self.ledger.read(key[0], key[1], last, produced))
            for key, (last, produced) in counts.items()
        }
        produce, headers_of = self.producer.produce, list
        for record, outs in zip(records, outgoing, strict=True):
            delivered = callbacks[(record.topic, record.partition)]
            for out in outs:
                try:
                    produce(out.topic, out.value, out.key, headers=headers_of(out.headers), on_delivery=delivered)
                except BufferError:
                    self._produce(out, delivered)

    def _read(self) -> list[Message]:
        """The next batch: up to the batch size, of what has arrived, without waiting to fill it.

        With records in flight, wait briefly (never spin on a core), then serve the deliveries. Idle,
        wait up to the batch time for the first record, then take what is already buffered with it:
        ``consume(n, timeout)`` alone holds a record until n have come or the time is up, which at
        a low rate made every record wait out most of the batch time. Under load the buffer holds a
        full batch by the time one is processed, so batches stay full."""
        size = self.settings.processor_batch_size
        if self.ledger.in_flight():
            return self.consumer.consume(size, IN_FLIGHT_WAIT_SECONDS)
        first = self.consumer.poll(self.settings.processor_batch_seconds)
        if first is None:
            return []
        return [first, *self.consumer.consume(size - 1, 0)] if size > 1 else [first]

    def _produce(self, out: RecordOut, on_delivery: Callable[[KafkaError | None, Message], None]) -> None:
        while True:
            try:
                self.producer.produce(out.topic, out.value, out.key, headers=list(out.headers), on_delivery=on_delivery)
                return
            except BufferError:
                self.producer.poll(0.05)  # librdkafka's queue is full: deliver some first

    def _delivered(self, ticket: Ticket, error: KafkaError | None, message: Message) -> None:
        problem = delivery_problem(error, message)
        if problem is None:
            self.ledger.delivered(ticket)
        else:
            self.ledger.failed(DeliveryFailed(f"{message.topic()}[{message.partition()}]: {problem}"))

    def _mark_delivered(self, error: KafkaError | None, message: Message) -> None:
        problem = delivery_problem(error, message)
        if problem is not None:
            self.ledger.failed(DeliveryFailed(f"watermark {message.key()!r}: {problem}"))
            return
        self.settling.mark_acknowledged(self.ledger, message.key(), message.value())

    def _write_marks(self) -> None:
        """Move the watermarks of what is settled and publish them (their acks free the commits)."""
        for record in self.settling.marks_to_publish(self.ledger):
            self._produce(record, self._mark_delivered)

    def _commit(self, *, asynchronous: bool) -> None:
        if self.ledger.failure is not None:
            return
        if not self.consumer.memberid():
            # Out of the group (a session lost while the broker was away): a commit now is refused,
            # and a static member's refusal (FENCED_INSTANCE_ID) is fatal. Commit after the rejoin.
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self.ledger.take_committable().items()]
        if not offsets:
            return
        try:
            if asynchronous:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            else:
                refused = [tp for tp in self.consumer.commit(offsets=offsets, asynchronous=False) if tp.error]
                if refused:
                    log.warning("commit refused for %s", refused)
        except KafkaException as exc:
            # A lost partition's commit is refused; its new owner reads from the last good commit.
            log.warning("commit of %d offsets failed: %s", len(offsets), exc)

    def _settle_all(self, timeout: float = DRAIN_SECONDS) -> None:
        """Deliver everything in flight, write its marks, deliver them, commit synchronously."""
        deadline = time.monotonic() + timeout
        while self.ledger.in_flight() and self.ledger.failure is None and time.monotonic() < deadline:
            self.producer.poll(0.05)
            self._write_marks()
        self.producer.flush(max(deadline - time.monotonic(), 1.0))
        if self.ledger.in_flight():
            log.warning("stopping with %d records not delivered; they will be read again", self.ledger.in_flight())
        self._commit(asynchronous=False)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._loop.run_until_complete(self.settling.assigned())
        if not self.ready:
            self.ready = True
            # The Faust engine's readiness line, so operators and tests watch for one marker.
            log.info("[^Worker]: Ready (batch engine, group protocol %s)", self.settings.kafka_group_protocol)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Leaving these partitions: settle and commit what was read from them, so their next owner
        # starts after it (classic protocol revokes all; KIP-848 only the moved ones).
        self._settle_all()
        self.ledger.forget([(tp.topic, tp.partition) for tp in partitions])

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Already someone else's: committing now would be refused; they will be read again.
        lost: list[Partition] = [(tp.topic, tp.partition) for tp in partitions]
        log.warning("partitions lost: %s", lost)
        self.ledger.forget(lost)

    def _report_lag(self) -> None:
        assigned = self.consumer.assignment()
        ends: dict[Partition, int] = {}
        for tp in assigned:
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                ends[(tp.topic, tp.partition)] = high
        positions = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in self.consumer.position(assigned)}
        self.settling.lag.report(ends, positions, time.time())

    def _consume_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if is_fatal(error):
            self._fatal(error)
        else:
            log.warning("consumer: %s", error)
        return True

    def _client_error(self, error: KafkaError) -> None:
        """librdkafka's error callback: fatal ones and authentication failures stop the worker (a
        wrong password is not retried forever); the rest (a broker down) librdkafka recovers from."""
        if error.code() == KafkaError._AUTHENTICATION:
            self.ledger.failed(SaslAuthenticationFailed(error.str()))
            self.stopping = True
        elif is_fatal(error):
            self._fatal(error)
            self.stopping = True
        else:
            log.warning("kafka: %s", error.str())

    def _fatal(self, error: KafkaError) -> None:
        # Only a new client recovers: stop without committing (the records are read again).
        fenced = FENCED_BY_GROUP in error.str()
        self.ledger.failed(InstanceFenced(error.str()) if fenced else KafkaException(error))

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s received: draining", signal.Signals(signum).name)
        self.stopping = True


# librdkafka reports FENCED_INSTANCE_ID only inside its _FATAL error's text.
FENCED_BY_GROUP = "fenced by other consumer with same group.instance.id"


class InstanceFenced(Exception):
    """The broker gave our group instance id to another member (KIP-345): exit ``EXIT_FENCED``."""


class SaslAuthenticationFailed(Exception):
    """The broker refused our credentials (Kafka's SASL_AUTHENTICATION_FAILED): waiting will not help."""
