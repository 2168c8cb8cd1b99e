"""Publishing a batch of outbox rows with librdkafka, and telling which ones the broker acknowledged.

The producer is idempotent with ``acks=all``; ``enable.gapless.guarantee`` makes a record that fails
for good fatal for the producer instead of letting a later record of the same partition through,
so the acknowledged rows of a partition are always a prefix of what was sent and per-key order
survives a retry (the relay then builds a new producer and sends the rest again). The partitioner
is murmur2, Kafka's Java default and aiokafka's: a lead lands on the same partition whichever
client produced its other events.

Delivery reports come for failed records only (``delivery.report.only.error``), through one callback
shared by every record: a Python call per acknowledged record cost as much as the produce call
itself. A batch is acknowledged when the producer's queue is empty and no record of it failed; a
record that failed is found by its value (the CloudEvent, unique by event id) among the batch's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from confluent_kafka import KafkaError, Producer

from salesflow.kafka_clients import librdkafka_options
from salesflow.settings import Settings

Headers = list[tuple[str, str | bytes | None]]  # as confluent-kafka types them


class Row(Protocol):
    """An outbox row as the relay reads it: ``(id, topic, key, value, headers as JSON text[, partition])``
    (an asyncpg ``Record`` fits)."""

    def __getitem__(self, index: int) -> Any: ...

    def __len__(self) -> int: ...


@dataclass
class BatchResult:
    """Ids the broker acknowledged; the first error seen (None when every row was acknowledged),
    its librdkafka code, and the topics librdkafka reported unknown."""

    acknowledged: list[int] = field(default_factory=list)
    error: str | None = None
    code: int = 0
    unknown_topics: set[str] = field(default_factory=set)


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


class Publisher:
    """One librdkafka producer and what it reported: failed deliveries only, to one shared callback."""

    def __init__(self, options: dict[str, Any], producer: Any = None) -> None:
        self.failures: list[tuple[KafkaError, str, bytes]] = []  # (error, topic, value)
        self.producer: Producer = producer or Producer(
            {**options, "delivery.report.only.error": True, "on_delivery": self._failed}
        )
        self._headers: dict[str, Headers] = {}

    def _failed(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self.failures.append((err, msg.topic() or "", msg.value() or b""))

    def topic_error(self, topic: str, timeout: float) -> int:
        """The cluster's error code for ``topic`` (0: it is there), from a metadata request. Blocking;
        raises ``KafkaException`` when the cluster cannot be reached within ``timeout`` s."""
        found = self.producer.list_topics(topic, timeout=timeout).topics.get(topic)
        if found is None:
            return int(KafkaError.UNKNOWN_TOPIC_OR_PART)
        return 0 if found.error is None else int(found.error.code())

    def publish(self, rows: Sequence[Row], timeout: float) -> BatchResult:
        """Send ``rows`` in order and wait (up to ``timeout`` s) for the broker. Blocking: run it in a
        thread. Records still unacknowledged by then are purged, so they count as failed."""
        self.failures.clear()
        produce, headers_of = self.producer.produce, self._headers_of
        for row in rows:
            while True:
                try:
                    if len(row) > 5 and row[5] is not None:  # pinned to a partition: an API replay
                        produce(row[1], row[3], row[2], headers=headers_of(row[4]), partition=row[5])
                    else:
                        produce(row[1], row[3], row[2], headers=headers_of(row[4]))
                    break
                except BufferError:  # the local queue is full: let it drain, then try again
                    self.producer.poll(0.05)
        if self.producer.flush(timeout):
            self.producer.purge()  # their reports come now, as failures
            self.producer.flush(0)
        return self._result(rows, timeout)

    def _headers_of(self, text: str) -> Headers:
        # Rows carry their headers as JSON text; the few distinct ones are decoded once.
        found = self._headers.get(text)
        if found is None:
            if len(self._headers) > 1000:
                self._headers.clear()
            found = self._headers[text] = [(name, value.encode()) for name, value in orjson.loads(text)]
        return found

    def _result(self, rows: Sequence[Row], timeout: float) -> BatchResult:
        if not self.failures:
            return BatchResult(acknowledged=[row[0] for row in rows])
        first = self.failures[0][0]
        result = BatchResult(error=first.str(), code=first.code())
        if first.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            result.error = f"records not acknowledged within {timeout:g} s"
        failed: dict[bytes, int] = {}
        for error, topic, value in self.failures:
            failed[value] = failed.get(value, 0) + 1
            if error.code() in (KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART):
                result.unknown_topics.add(topic)
        for row in rows:
            if failed.get(row[3], 0) > 0:
                failed[row[3]] -= 1
            else:
                result.acknowledged.append(row[0])
        return result

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for what is queued, then drop the rest (its rows stay)."""
        self.producer.flush(timeout)
        self.producer.purge()
        self.producer.flush(0)
