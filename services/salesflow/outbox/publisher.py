"""Publishing a batch of outbox rows with librdkafka, and telling which ones the broker acknowledged.

The producer is idempotent with ``acks=all``; ``enable.gapless.guarantee`` makes a record that fails
for good fatal for the producer instead of letting a later record of the same partition through,
so the acknowledged rows of a partition are always a prefix of what was sent and per-key order
survives a retry (the relay then builds a new producer and sends the rest again). The partitioner
is murmur2, Kafka's Java default and aiokafka's: a lead lands on the same partition whichever
client produced its other events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaError, Producer

from salesflow.kafka_clients import librdkafka_options
from salesflow.settings import Settings


class Row(Protocol):
    """What the publisher needs of an outbox row (an asyncpg ``Record`` fits)."""

    def __getitem__(self, name: str) -> Any: ...


@dataclass
class BatchResult:
    """Ids the broker acknowledged, and the first error seen (None when every row was acknowledged)."""

    acknowledged: list[int] = field(default_factory=list)
    error: str | None = None
    fatal: bool = False


def relay_producer_options(settings: Settings, message_timeout_seconds: float) -> dict[str, Any]:
    """librdkafka configuration of the relay's producer."""
    return {
        **librdkafka_options(settings),
        "enable.idempotence": True,
        "acks": "all",
        "enable.gapless.guarantee": True,
        "partitioner": "murmur2_random",
        "linger.ms": 2,
        "message.timeout.ms": int(message_timeout_seconds * 1000),
        "queue.buffering.max.messages": 200_000,
    }


def publish_batch(producer: Producer, rows: Sequence[Row], timeout: float) -> BatchResult:
    """Send ``rows`` in order and wait (up to ``timeout`` s) for every delivery report. Blocking: run it
    in a thread. Rows without a report by then count as not acknowledged."""
    result = BatchResult()

    def report(row_id: int) -> Any:
        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is None:
                result.acknowledged.append(row_id)
            elif result.error is None:
                result.error = err.str()
                result.fatal = err.fatal()

        return delivered

    for row in rows:
        headers = [(name, value.encode()) for name, value in row["headers"]]
        while True:
            try:
                producer.produce(row["topic"], row["value"], row["key"], headers=headers, on_delivery=report(row["id"]))
                break
            except BufferError:  # the local queue is full: serve delivery reports, then try again
                producer.poll(0.05)
    left = producer.flush(timeout)
    if left and result.error is None:
        result.error = f"{left} records not acknowledged within {timeout:g} s"
    return result
