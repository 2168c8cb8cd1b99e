"""Bytes (and headers) from Kafka into a validated CloudEvent, or an ``InvalidEvent`` with its reason.

Structured mode: the record value is the whole envelope as JSON. Binary mode: ``ce_*`` headers carry the
attributes and the value is the payload JSON. Both end in the same validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import orjson
from pydantic import ValidationError

from salesflow.domain.events import DEFAULT_SCHEMA_VERSION, CloudEvent, EventType, payload_model
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent

Headers = Sequence[tuple[str, bytes]]

BINARY_PREFIX = "ce_"


def decode_event(value: bytes | None, headers: Headers = (), *, max_bytes: int) -> CloudEvent[Any]:
    """Decode and validate one record; raise ``InvalidEvent`` saying why it is not an event."""
    if not value:
        raise InvalidEvent(Reason.EMPTY, "the record has no value (empty or tombstone)")
    if len(value) > max_bytes:
        raise InvalidEvent(Reason.TOO_LARGE, f"{len(value)} bytes is over the {max_bytes} byte limit")
    binary = _binary_attributes(headers)
    if binary is not None:
        return validate_envelope({**binary, "data": _parse_json(value)})
    return validate_envelope(_parse_json(value))


def validate_envelope(raw: Any) -> CloudEvent[Any]:
    """Validate a parsed envelope against the payload model of its type and schema version."""
    if not isinstance(raw, dict):
        raise InvalidEvent(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(raw).__name__}")
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    if raw.get("specversion") != "1.0":
        raise InvalidEvent(
            Reason.UNSUPPORTED_SPECVERSION, f"specversion {raw.get('specversion')!r} is not '1.0'", event_id
        )
    try:
        event_type = EventType(raw.get("type"))
    except ValueError:
        raise InvalidEvent(Reason.UNKNOWN_TYPE, f"unknown event type {raw.get('type')!r}", event_id) from None
    version = raw.get("dataschema") or DEFAULT_SCHEMA_VERSION
    model = payload_model(event_type, version) if isinstance(version, str) else None
    if model is None:
        raise InvalidEvent(Reason.UNSUPPORTED_SCHEMA, f"no schema {version!r} for {event_type}", event_id)
    try:
        return _envelope_model(model).model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, event_id) from None


@cache
def _envelope_model(payload: type[Any]) -> type[CloudEvent[Any]]:
    # Parametrizing a generic model goes through pydantic's class cache on every call: measured at
    # 40% of decoding. There are a handful of payload models, so keep the classes here.
    return CloudEvent[payload]  # type: ignore[valid-type]


def _parse_json(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent(Reason.INVALID_UTF8, "the value is not valid UTF-8") from None
        raise InvalidEvent(Reason.NOT_JSON, f"the value is not JSON: {exc}") from None


def _binary_attributes(headers: Headers) -> dict[str, str] | None:
    """The CloudEvents attributes of a binary-mode record, or None for a structured one."""
    attributes: dict[str, str] = {}
    for name, raw in headers:
        if not name.startswith(BINARY_PREFIX):
            continue
        try:
            attributes[name[len(BINARY_PREFIX) :]] = raw.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            raise InvalidEvent(Reason.INVALID_HEADERS, f"header {name!r} is not UTF-8 text") from None
    if not attributes:
        return None
    if "specversion" not in attributes:
        raise InvalidEvent(Reason.INVALID_HEADERS, "ce_* headers without ce_specversion", attributes.get("id"))
    return attributes


def _invalid(exc: ValidationError, event_id: str | None) -> InvalidEvent:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    reason = Reason.MISSING_FIELD if first["type"] == "missing" else Reason.INVALID_FIELD
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InvalidEvent(reason, f"{where}: {first['msg']}{more}", event_id)
