"""librdkafka (confluent-kafka) clients of the batch engine, configured from the settings, and its
messages as plain records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message

from salesflow.domain.records import Headers, RecordIn
from salesflow.kafka_clients import librdkafka_group_options, librdkafka_options
from salesflow.settings import Settings

ErrorCallback = Callable[[KafkaError], None]

# librdkafka's defaults wait up to 5 minutes per record; as Faust's producer does, keep retrying
# through a broker restart rather than failing (a failure stops the worker), but not forever.
DELIVERY_TIMEOUT_MS = 120_000
LINGER_MS = 5  # a few ms of batching: far fewer produce requests for little latency
PREFETCH_KBYTES = 16 * 1024


def consumer_config(settings: Settings, on_error: ErrorCallback) -> dict[str, Any]:
    """The worker's group consumer: manual commits of acknowledged positions only."""
    return {
        **librdkafka_options(settings),
        **librdkafka_group_options(settings),
        "group.id": settings.processor_group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # librdkafka prefetches up to 64 MB by default: most of a worker's memory while it drains a
        # backlog. 16 MB is still over a second of work at the worker's rate (bench/README.md).
        "queued.max.messages.kbytes": PREFETCH_KBYTES,
        "error_cb": on_error,
    }


def producer_config(settings: Settings, on_error: ErrorCallback) -> dict[str, Any]:
    """The worker's producer: idempotent, acknowledged by all in-sync replicas, in order per partition."""
    return {
        **librdkafka_options(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": LINGER_MS,
        "delivery.timeout.ms": DELIVERY_TIMEOUT_MS,
        # Same partitions as our aiokafka/Faust producers for the same key (Java's murmur2).
        "partitioner": "murmur2_random",
        "error_cb": on_error,
    }


# A delivery report with no error and no offset: see ``delivery_problem``.
NO_OFFSET = "acknowledged without an offset: not known to be on the log"


def delivery_problem(error: KafkaError | None, message: Message) -> str | None:
    """Why a delivery report does not prove the record is on the log, or None when it does.

    The idempotent producer can report a record as delivered with no offset (a batch the broker took
    for a duplicate: seen in the first sends to topics created a moment before). Every such record
    was missing from its partition when read back (tests/faults/test_first_sends.py), so it counts as
    not delivered: the worker stops without committing past it and sends it again after its restart."""
    if error is not None:
        return str(error)
    return NO_OFFSET if message.offset() is None else None


def is_fatal(error: KafkaError) -> bool:
    """A client that cannot go on: librdkafka flags it, or hands it over as ``_FATAL`` (a static member
    fenced by the group, the idempotent producer's sequence broken). Only a new client recovers."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


def record_in(message: Message) -> RecordIn:
    """A consumed message as the batch core's ``RecordIn``."""
    kind, timestamp = message.timestamp()
    headers: Headers = tuple(message.headers() or ())  # type: ignore[arg-type]  # values may be None on the wire
    return RecordIn(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp_ms=timestamp if kind != 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
        key=message.key(),
        value=message.value(),
        headers=headers,
    )
