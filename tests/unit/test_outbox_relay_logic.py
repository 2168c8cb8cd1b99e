"""The relay's pure parts: which rows count as acknowledged, the producer's options, its settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from salesflow.outbox.publisher import publish_batch, relay_producer_options
from salesflow.outbox.settings import OutboxSettings
from salesflow.settings import Settings


class ScriptedProducer:
    """Stands in for librdkafka's queue: reports a delivery per record as scripted, and fills up once."""

    def __init__(self, errors: dict[bytes, KafkaError], full_once: bool = False, unreported: int = 0) -> None:
        self.errors = errors
        self.full_once = full_once
        self.unreported = unreported
        self.queued: list[tuple[bytes, Callable[[KafkaError | None, Any], None]]] = []
        self.sent: list[bytes] = []

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Any) -> None:
        if self.full_once:
            self.full_once = False
            raise BufferError("queue full")
        self.queued.append((key, on_delivery))
        self.sent.append(key)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        reported = self.queued[: len(self.queued) - self.unreported]
        for key, report in reported:
            report(self.errors.get(key), None)
        return self.unreported


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "topic": "t", "key": f"k{i}".encode(), "value": b"{}", "headers": [["a", "b"]]} for i in range(n)]


def test_every_row_acknowledged() -> None:
    producer = ScriptedProducer({}, full_once=True)
    result = publish_batch(producer, rows(5), timeout=1)  # type: ignore[arg-type] # a scripted stand-in
    assert result.acknowledged == [0, 1, 2, 3, 4] and result.error is None
    assert producer.sent == [b"k0", b"k1", b"k2", b"k3", b"k4"]  # a full queue delays, never drops


def test_a_failed_delivery_leaves_its_row() -> None:
    failed = KafkaError(KafkaError._MSG_TIMED_OUT)
    result = publish_batch(ScriptedProducer({b"k2": failed}), rows(4), timeout=1)  # type: ignore[arg-type]
    assert result.acknowledged == [0, 1, 3]
    assert result.error == "Local: Message timed out" and not result.fatal


def test_records_without_a_report_are_not_acknowledged() -> None:
    result = publish_batch(ScriptedProducer({}, unreported=2), rows(5), timeout=1)  # type: ignore[arg-type]
    assert result.acknowledged == [0, 1, 2]
    assert result.error == "2 records not acknowledged within 1 s"


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
