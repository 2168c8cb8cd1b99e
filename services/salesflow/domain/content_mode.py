"""Which CloudEvents content mode a Kafka record uses: structured (the value is the envelope) or binary.

We follow the Kafka protocol binding of CloudEvents 1.0 (kafka-protocol-binding.md, section 3 "Kafka
Message Mapping"): "The receiver of the event can distinguish between the two content modes by
inspecting the content-type Header of the Kafka message. If the header is present and its value is
prefixed with the CloudEvents media type application/cloudevents (matched case-insensitively) [...]
the receiver uses structured mode". Section 3.3.3 lets a structured record carry the binary mode's
``ce_*`` headers too, so those never turn a structured record into a binary one.

Otherwise the binding defaults to binary mode. We keep one exception, older than this module: a record
with no CloudEvents header at all (no ``ce_*``, as a plain ``kcat`` or script producer sends it) is
read as structured JSON, the envelope's own format.
"""

from __future__ import annotations

from collections.abc import Sequence

from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent

Headers = Sequence[tuple[str, bytes]]

BINARY_PREFIX = "ce_"
CLOUDEVENTS_MEDIA_TYPE = "application/cloudevents"


def binary_attributes(headers: Headers) -> dict[str, str] | None:
    """The CloudEvents attributes of a binary-mode record, or None for a structured one.

    Raises ``InvalidEvent`` for a binary record whose ``ce_*`` headers are not UTF-8, name an
    attribute twice, or lack ``ce_specversion``.
    """
    if not headers or is_structured(content_type(headers)):
        return None
    attributes: dict[str, str] = {}
    for name, raw in headers:
        if not name.startswith(BINARY_PREFIX):
            continue
        attribute = name[len(BINARY_PREFIX) :]
        try:
            text = raw.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            raise InvalidEvent(Reason.INVALID_HEADERS, f"header {name!r} is not UTF-8 text") from None
        if attribute in attributes:
            # The binding maps each attribute to one header; two would let the id or tenant depend on
            # which one a reader keeps.
            raise InvalidEvent(Reason.DUPLICATE_KEY, f"header {name!r} appears twice", attributes.get("id"))
        attributes[attribute] = text
    if not attributes:
        return None
    if "specversion" not in attributes:
        raise InvalidEvent(Reason.INVALID_HEADERS, "ce_* headers without ce_specversion", attributes.get("id"))
    return attributes


def content_type(headers: Headers) -> str | None:
    """The record's ``content-type`` header as text (the last one, as Kafka's ``lastHeader`` reads it)."""
    found: str | None = None
    for name, raw in headers:
        if name.lower() == "content-type":
            try:
                found = raw.decode("utf-8")
            except (UnicodeDecodeError, AttributeError):
                found = None  # not text, so not a CloudEvents media type either
    return found


def is_structured(media_type: str | None) -> bool:
    """Whether a content type names a CloudEvents event format (``application/cloudevents+json; ...``)."""
    return media_type is not None and media_type.strip().lower().startswith(CLOUDEVENTS_MEDIA_TYPE)
