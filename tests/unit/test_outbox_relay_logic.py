"""The relay's pure parts: which rows count as acknowledged, how Kafka errors are classified, the
producer's options, its settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from salesflow.failure_policy import classify_kafka_error
from salesflow.outbox.outbox_settings import OutboxSettings
from salesflow.outbox.publisher import Publisher, relay_producer_options
from salesflow.settings import Settings


class FakeMessage:
    def __init__(self, topic: str, value: bytes) -> None:
        self._topic, self._value = topic, value

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes:
        return self._value


class ScriptedProducer:
    """Stands in for librdkafka's queue: reports the scripted failures (reports for failures only, as
    ``delivery.report.only.error`` does), leaves ``unreported`` records in the queue, fills up once."""

    def __init__(self, errors: dict[bytes, KafkaError], full_once: bool = False, unreported: int = 0) -> None:
        self.errors = errors
        self.full_once = full_once
        self.unreported = unreported
        self.queued: list[tuple[str, bytes, bytes]] = []
        self.sent: list[bytes] = []
        self.headers: list[Any] = []
        self.report: Callable[[KafkaError | None, Any], None] = lambda err, msg: None

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any) -> None:
        if self.full_once:
            self.full_once = False
            raise BufferError("queue full")
        self.queued.append((topic, key, value))
        self.sent.append(key)
        self.headers.append(headers)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        cut = len(self.queued) - self.unreported
        done, self.queued = self.queued[:cut], self.queued[cut:]
        for topic, key, value in done:
            if key in self.errors:
                self.report(self.errors[key], FakeMessage(topic, value))
        return len(self.queued)

    def purge(self) -> None:
        for topic, _, value in self.queued:
            self.report(KafkaError(KafkaError._PURGE_QUEUE), FakeMessage(topic, value))
        self.queued = []


def publisher(producer: ScriptedProducer) -> Publisher:
    made = Publisher({}, producer=producer)
    producer.report = made._failed
    return made


def rows(n: int, topic: str = "t") -> list[tuple[int, str, bytes, bytes, str]]:
    return [(i, topic, f"k{i}".encode(), f'{{"id": {i}}}'.encode(), '[["a", "b"]]') for i in range(n)]


def test_every_row_acknowledged() -> None:
    producer = ScriptedProducer({}, full_once=True)
    result = publisher(producer).publish(rows(5), timeout=1)
    assert result.acknowledged == [0, 1, 2, 3, 4] and result.error is None
    assert producer.sent == [b"k0", b"k1", b"k2", b"k3", b"k4"]  # a full queue delays, never drops
    assert producer.headers[0] == [("a", b"b")] and producer.headers[0] is producer.headers[4]  # decoded once


def test_a_failed_delivery_leaves_its_row() -> None:
    failed = KafkaError(KafkaError._MSG_TIMED_OUT)
    result = publisher(ScriptedProducer({b"k2": failed})).publish(rows(4), timeout=1)
    assert result.acknowledged == [0, 1, 3]
    assert result.error == "Local: Message timed out" and result.code == KafkaError._MSG_TIMED_OUT


def test_records_without_a_report_are_purged_and_not_acknowledged() -> None:
    result = publisher(ScriptedProducer({}, unreported=2)).publish(rows(5), timeout=1)
    assert result.acknowledged == [0, 1, 2]
    assert result.error == "records not acknowledged within 1 s"


def test_an_unknown_topic_is_named() -> None:
    unknown = KafkaError(KafkaError._UNKNOWN_TOPIC)
    result = publisher(ScriptedProducer({b"k0": unknown, b"k1": unknown})).publish(rows(2, "nope"), timeout=1)
    assert result.acknowledged == [] and result.unknown_topics == {"nope"}
    assert classify_kafka_error(result.code) == "unknown_topic"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (KafkaError._UNKNOWN_TOPIC, "unknown_topic"),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, "unknown_topic"),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, "fatal"),
        (KafkaError.CLUSTER_AUTHORIZATION_FAILED, "fatal"),
        (KafkaError.SASL_AUTHENTICATION_FAILED, "fatal"),
        (KafkaError._AUTHENTICATION, "fatal"),
        (KafkaError.MSG_SIZE_TOO_LARGE, "fatal"),
        (KafkaError._MSG_TIMED_OUT, "transient"),
        (KafkaError._PURGE_QUEUE, "transient"),
        (KafkaError._GAPLESS_GUARANTEE, "transient"),  # a fresh producer sends the rest again
        (KafkaError._TRANSPORT, "transient"),
    ],
)
def test_kafka_errors_are_classified_by_the_failure_policy(code: int, kind: str) -> None:
    assert classify_kafka_error(code) == kind


def test_the_relay_producer_is_idempotent_gapless_and_partitions_like_java() -> None:
    options = relay_producer_options(Settings(kafka_bootstrap_servers="b:9092"), message_timeout_seconds=7)
    assert options["enable.idempotence"] is True and options["acks"] == "all"
    assert options["enable.gapless.guarantee"] is True
    assert options["partitioner"] == "murmur2_random"  # aiokafka's and Java's: same lead, same partition
    assert options["message.timeout.ms"] == 7000 and options["bootstrap.servers"] == "b:9092"


def test_the_relay_producer_takes_the_security_settings() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="svc", kafka_sasl_password=SecretStr("pw")
    )
    options = relay_producer_options(settings, 30)
    assert (options["security.protocol"], options["sasl.username"], options["sasl.password"]) == (
        "sasl_plaintext",
        "svc",
        "pw",
    )


def test_outbox_settings_fall_back_to_the_pipeline_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALESFLOW_OUTBOX_DATABASE_URL", raising=False)
    assert OutboxSettings().url("postgresql+asyncpg://pipeline") == "postgresql+asyncpg://pipeline"
    monkeypatch.setenv("SALESFLOW_OUTBOX_DATABASE_URL", "postgresql+asyncpg://service")
    monkeypatch.setenv("SALESFLOW_OUTBOX_BATCH_SIZE", "250")
    config = OutboxSettings()
    assert config.url("postgresql+asyncpg://pipeline") == "postgresql+asyncpg://service"
    assert config.batch_size == 250
    assert "service" not in repr(config)  # a URL may hold a password
    monkeypatch.setenv("SALESFLOW_OUTBOX_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="batch_size"):
        OutboxSettings()
