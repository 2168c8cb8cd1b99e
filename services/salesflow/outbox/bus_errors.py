"""Errors of the event buses."""

from __future__ import annotations

from salesflow.errors import SalesflowError


class PublishFailed(SalesflowError):
    """The broker did not acknowledge an event: publish it again (the same event, so the same id)."""

    def __init__(self, topic: str, event_id: str, reason: str) -> None:
        super().__init__(f"event {event_id} was not acknowledged by Kafka on topic {topic}: {reason}")
        self.topic = topic
        self.event_id = event_id
        self.reason = reason


class PublishTimeout(PublishFailed):
    """No acknowledgement within the timeout; the record may still arrive later (downstream dedupes by id)."""
