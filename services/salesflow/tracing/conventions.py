"""Span names and attribute keys: OpenTelemetry's messaging conventions, plus ours (``salesflow.*``).

Attributes carry ids, types, tenant, status and the dead-letter reason; never a payload or a secret.
"""

from __future__ import annotations

SYSTEM = "messaging.system"
OPERATION_TYPE = "messaging.operation.type"  # create, send, receive, process, settle
OPERATION_NAME = "messaging.operation.name"
DESTINATION = "messaging.destination.name"
CONSUMER_GROUP = "messaging.consumer.group.name"
MESSAGE_ID = "messaging.message.id"
BATCH_COUNT = "messaging.batch.message_count"
PARTITION = "messaging.destination.partition.id"
OFFSET = "messaging.kafka.offset"
MESSAGE_KEY = "messaging.kafka.message.key"

EVENT_ID = "cloudevents.event_id"
EVENT_TYPE = "cloudevents.event_type"
EVENT_SOURCE = "cloudevents.event_source"
TENANT = "salesflow.tenant_id"
STATUS = "salesflow.status"
REPLAY = "salesflow.replay"
DEAD_LETTER_REASON = "salesflow.dead_letter.reason"
HANDLER = "salesflow.handler"
TRACE_CONTEXT_INVALID = "salesflow.trace_context.invalid"
ROWS = "salesflow.projection.rows"

KAFKA = "kafka"
