"""Bytes (and headers) from Kafka into a validated CloudEvent, or an ``InvalidEvent`` with its reason.

Structured mode: the record value is the whole envelope as JSON. Binary mode: ``ce_*`` headers carry the
attributes and the value is the payload JSON (``content_mode`` says which). Both end in the same
validation, by the pydantic models of ``domain.events``: their constraints are the contract.

One path: orjson parses (C), ``json_strict`` rejects a repeated key (a byte-count gate, the exact check
only where the counts disagree), then checks in the order that picks the dead-letter reason, and the
envelope model validates the dict (pydantic-core). Validating the JSON bytes straight with pydantic-core
was measured too (bench/decode.py): no faster once the envelope has a ``mode="before"`` validator, which
needs the dict anyway.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import ValidationError

from salesflow.domain import json_strict
from salesflow.domain.content_mode import Headers, binary_attributes
from salesflow.domain.events import DEFAULT_SCHEMA_VERSION, CloudEvent, EventType, payload_model
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent

__all__ = ["Headers", "decode_event", "validate_envelope"]

_TYPES = frozenset(t.value for t in EventType)


def decode_event(value: bytes | None, headers: Headers = (), *, max_bytes: int) -> CloudEvent[Any]:
    """Decode and validate one record; raise ``InvalidEvent`` saying why it is not an event."""
    if not value:
        raise InvalidEvent(Reason.EMPTY, "the record has no value (empty or tombstone)")
    if len(value) > max_bytes:
        raise InvalidEvent(Reason.TOO_LARGE, f"{len(value)} bytes is over the {max_bytes} byte limit")
    binary = binary_attributes(headers)
    if binary is not None:
        return validate_envelope({**binary, "data": json_strict.loads(value, root="data")})
    return validate_envelope(json_strict.loads(value, root=""))


def validate_envelope(raw: Any) -> CloudEvent[Any]:
    """Validate a parsed envelope against the payload model of its type and schema version."""
    if not isinstance(raw, dict):
        raise InvalidEvent(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(raw).__name__}")
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    if raw.get("specversion") != "1.0":
        raise InvalidEvent(
            Reason.UNSUPPORTED_SPECVERSION, f"specversion {raw.get('specversion')!r} is not '1.0'", event_id
        )
    raw_type = raw.get("type")
    if not isinstance(raw_type, str) or raw_type not in _TYPES:
        raise InvalidEvent(Reason.UNKNOWN_TYPE, f"unknown event type {raw_type!r}", event_id)
    event_type = EventType(raw_type)
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


def _invalid(exc: ValidationError, event_id: str | None) -> InvalidEvent:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    reason = Reason.MISSING_FIELD if first["type"] == "missing" else Reason.INVALID_FIELD
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InvalidEvent(reason, f"{where}: {first['msg']}{more}", event_id)
