"""Bytes (and headers) from Kafka into a validated CloudEvent, or an ``InvalidEvent`` with its reason.

Structured mode: the record value is the whole envelope as JSON. Binary mode: ``ce_*`` headers carry the
attributes and the value is the payload JSON (``content_mode`` says which). Both end in the same
validation, by the pydantic models of ``domain.events``: their constraints are the contract.

Two paths, one result:
- the fast path (structured records, nearly every event): pydantic-core validates the JSON bytes
  straight into the envelope model of the type the record names, with no Python dict in between, and
  byte counts vouch that no key was repeated;
- the reference path (everything the fast path cannot vouch for: invalid records, binary mode,
  escapes): orjson, the exact duplicate-key check, then the checks in the order that picks the
  dead-letter reason. The fast path returns only what the reference path would; tests hold them equal.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from salesflow.domain import json_strict
from salesflow.domain.content_mode import Headers, binary_attributes
from salesflow.domain.events import DEFAULT_SCHEMA_VERSION, CloudEvent, EventType, payload_model
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent

__all__ = ["Headers", "decode_event", "validate_envelope"]

# Where the envelope names its type; only a hint for the fast path, checked against what was validated.
_TYPE_HINT = re.compile(rb'"type"\s*:\s*"([^"\\]*)"')
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
    return _validate_json(value) or validate_envelope(json_strict.loads(value, root=""))


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


def _validate_json(value: bytes) -> CloudEvent[Any] | None:
    """The event pydantic-core validates from the bytes, or None where only the reference path can say."""
    start = value.find(b'"type":"')
    if start >= 0:
        start += 8
        hinted = _hinted_models().get(value[start : value.find(b'"', start)])
    else:  # a producer that puts spaces around its colons
        match = _TYPE_HINT.search(value)
        hinted = _hinted_models().get(match.group(1)) if match else None
    if hinted is None:
        return None
    event_type, model = hinted
    try:
        event = model.model_validate_json(value)
    except ValidationError:
        return None  # invalid: the reference path finds the reason
    if event.type is not event_type or (event.dataschema or DEFAULT_SCHEMA_VERSION) != DEFAULT_SCHEMA_VERSION:
        return None  # the hint was not the envelope's type, or a schema version the hint did not pick
    envelope_keys, data_keys = _plain_keys(event), _plain_keys(event.data)
    if envelope_keys is None or data_keys is None:
        return None  # a number orjson reads differently: the reference path decides
    if json_strict.key_token_bound(value) != envelope_keys + data_keys:
        return None  # maybe a repeated key: the exact check decides
    return event


def _plain_keys(model: BaseModel) -> int | None:
    """The distinct keys a validated model was given: its fields set (pydantic counts extra fields among
    them) and the keys inside its extra fields' values; None for a number orjson reads otherwise."""
    numeric = _numeric_fields(type(model))
    if numeric and not json_strict.same_numbers_in_orjson([getattr(model, name) for name in numeric]):
        return None
    extra = model.__pydantic_extra__
    if not extra:
        return len(model.__pydantic_fields_set__)
    inner = json_strict.plain_keys(extra.values())
    return None if inner is None else len(model.__pydantic_fields_set__) + inner


@cache
def _numeric_fields(model: type[BaseModel]) -> tuple[str, ...]:
    # The fields whose type admits an int or a float (``int | None`` included): the only typed fields
    # where pydantic-core and orjson can read a number differently.
    def numeric(annotation: Any) -> bool:  # through unions and Annotated (NonNegativeFloat | None)
        return annotation in (int, float) or any(numeric(arg) for arg in get_args(annotation))

    return tuple(name for name, field in model.model_fields.items() if numeric(field.annotation))


@cache
def _hinted_models() -> dict[bytes, tuple[EventType, type[CloudEvent[Any]]]]:
    # The type's name as it appears in the bytes -> the type and the envelope model of its default
    # schema version (the only one there is today; a record naming another takes the reference path).
    models = {t: payload_model(t, DEFAULT_SCHEMA_VERSION) for t in EventType}
    return {t.value.encode(): (t, _envelope_model(model)) for t, model in models.items() if model is not None}


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
