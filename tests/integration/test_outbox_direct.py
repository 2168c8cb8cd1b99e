"""The direct bus, for services without a database: it returns once the broker has acknowledged the
event, and raises an error naming the topic when no acknowledgement comes."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType

from salesflow.kafka_clients import librdkafka_options
from salesflow.outbox import PublishFailed, PublishTimeout, direct_event_bus
from salesflow.producer import LeadCreatedEvent, MessageSentEvent
from salesflow.settings import Settings
from tests.conftest import SettingsFactory
from tests.integration.test_outbox_kit import received

pytestmark = pytest.mark.integration


async def test_publish_returns_once_the_broker_acknowledged(settings: Settings) -> None:
    tenant = f"direct-{uuid.uuid4().hex[:6]}"
    event = LeadCreatedEvent(tenant_id=tenant, lead_id="l-1", source="api")
    async with direct_event_bus(settings) as bus:
        await bus.publish(event, request_id="req-d")
        await bus.publish(event, request_id="req-d")  # a retry of the same event keeps its id
    found = await received(settings, expected=2)
    assert [r.event["id"] for r in found] == [str(event.event_id)] * 2
    assert {r.key for r in found} == {f"{tenant}:l-1".encode()}
    assert found[0].event["requestid"] == "req-d"


def broker_creates_topics(settings: Settings) -> bool:
    """Whether the broker creates a topic on first use (then a missing topic acknowledges after all)."""
    admin = AdminClient(librdkafka_options(settings))
    broker = next(iter(admin.list_topics(timeout=10).brokers))
    resource = ConfigResource(ResourceType.BROKER, str(broker))
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    return bool(entries["auto.create.topics.enable"].value == "true")


async def test_no_acknowledgement_within_the_timeout_names_the_topic(settings_factory: SettingsFactory) -> None:
    settings = settings_factory()  # its topics are never created: no partition can acknowledge
    if await asyncio.to_thread(broker_creates_topics, settings):
        pytest.skip("this broker creates topics on first use (auto.create.topics.enable=true)")
    event = MessageSentEvent(
        tenant_id="acme",
        lead_id="l",
        message_id="m",
        channel="sms",
        queued_at="2026-11-24T12:00:00Z",
        sent_at="2026-11-24T12:00:01Z",
    )
    async with direct_event_bus(settings, timeout=2) as bus:
        with pytest.raises(PublishTimeout) as raised:
            await bus.publish(event)
    topic = settings.topics.source(event.event_type)
    assert raised.value.topic == topic and raised.value.event_id == str(event.event_id)
    assert topic in str(raised.value) and "within 2 s" in str(raised.value)


async def test_an_unreachable_broker_is_a_clear_error(settings_factory: SettingsFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = settings_factory(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    with pytest.raises(PublishFailed, match="cannot reach Kafka"):
        async with direct_event_bus(settings, timeout=2):
            pass
