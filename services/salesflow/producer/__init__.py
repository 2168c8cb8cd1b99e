"""Producing events: typed events, the producer client, the envelope builder, and the demo load generator."""

from salesflow.producer.typed_events import (
    AutopilotActionExecutedEvent,
    LeadCreatedEvent,
    MessageSentEvent,
    ProducerEvent,
    SequenceStepExecutedEvent,
    UtmFields,
)

__all__ = [
    "AutopilotActionExecutedEvent",
    "LeadCreatedEvent",
    "MessageSentEvent",
    "ProducerEvent",
    "SequenceStepExecutedEvent",
    "UtmFields",
]
