"""Bytes (and headers) from Kafka into a validated CloudEvent, or an ``InvalidEvent`` with its reason.

Structured mode: the record value is the whole envelope as JSON. Binary mode: ``ce_*`` headers carry the
attributes and the value is the payload JSON (``content_mode`` says which). Both end in the same
validation, by the msgspec structs of ``domain.events``: their constraints are the contract.

One path: orjson parses (C), ``json_strict`` rejects a repeated key (a byte-count gate, the exact check
only where the counts disagree), then checks in the order that picks the dead-letter reason; extra
fields' names and values and NULs are checked here (only where they can be: a document without the six
bytes ``\\u0000`` holds no NUL), and ``msgspec.convert`` builds the typed struct from the dict in C.
Decoding the bytes straight into the struct was measured too (bench/README.md): faster alone, but the
repeated-key and extra-field rules need the parsed dict, and a second parse cost more than it saved.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from salesflow.domain import json_strict
from salesflow.domain.content_mode import Headers, binary_attributes
from salesflow.domain.events import CloudEvent, EventType, Payload
from salesflow.domain.limits import (
    EXTRA_TEXT_MAX,
    JSON_NUL,
    LimitError,
    find_nul,
    refuse_unstorable_names,
    refuse_unstorable_values,
)
from salesflow.domain.versions import model_for, versions
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent

__all__ = ["Headers", "decode_event", "validate_envelope"]

_TYPES = frozenset(t.value for t in EventType)
_TRACE_EXTENSIONS = frozenset({"traceparent", "tracestate"})  # CloudEvents' distributed tracing extension


def decode_event(value: bytes | None, headers: Headers = (), *, max_bytes: int) -> CloudEvent[Any]:
    """Decode and validate one record; raise ``InvalidEvent`` saying why it is not an event."""
    if not value:
        raise InvalidEvent(Reason.EMPTY, "the record has no value (empty or tombstone)")
    if len(value) > max_bytes:
        raise InvalidEvent(Reason.TOO_LARGE, f"{len(value)} bytes is over the {max_bytes} byte limit")
    binary = binary_attributes(headers)
    may_hold_nul = JSON_NUL in value
    if binary is not None:
        may_hold_nul = may_hold_nul or any("\x00" in text for text in binary.values())
        return validate_envelope({**binary, "data": json_strict.loads(value, root="data")}, may_hold_nul=may_hold_nul)
    return validate_envelope(json_strict.loads(value, root=""), may_hold_nul=may_hold_nul)


def validate_envelope(raw: Any, *, may_hold_nul: bool = True) -> CloudEvent[Any]:
    """Validate a parsed envelope against the payload struct of its type and schema version.

    ``may_hold_nul=False``: the caller knows no string or name of ``raw`` holds a NUL (its JSON had no
    ``\\u0000``), so that walk is skipped; a Python caller's dict is always walked."""
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
    dataschema = raw.get("dataschema")  # a URI ending in the version, or bare "v1" (``domain.versions``)
    model = model_for(event_type, dataschema) if dataschema is None or isinstance(dataschema, str) else None
    if model is None:
        raise InvalidEvent(Reason.UNSUPPORTED_SCHEMA, _unsupported(event_type, dataschema), event_id)
    try:
        return _build(raw, model, may_hold_nul)
    except LimitError as exc:
        raise InvalidEvent(Reason.INVALID_FIELD, str(exc), event_id) from None
    except msgspec.ValidationError as exc:
        raise _invalid(exc, event_id) from None


def _unsupported(event_type: EventType, dataschema: Any) -> str:
    known = ", ".join(versions(event_type))
    return f"dataschema {str(dataschema)[:100]!r} names no version of {event_type} this worker knows ({known})"


def _build(raw: dict[str, Any], model: type[Payload], may_hold_nul: bool) -> CloudEvent[Any]:
    """The struct, after the rules msgspec does not state: extra fields' names and values, and NULs."""
    envelope, envelope_names, payload_names = _shapes(model)
    extensions = _extras(raw, envelope_names)
    data = raw.get("data")
    extra = _extras(data, payload_names) if isinstance(data, dict) else {}
    checked_extensions = extensions and not _trace_context_only(extensions)
    if checked_extensions:
        refuse_unstorable_names(extensions)
    if extra:
        refuse_unstorable_names(extra, "data: ")
    if checked_extensions:
        refuse_unstorable_values(extensions)
    if extra:
        refuse_unstorable_values(extra, "data.")
    if may_hold_nul:  # the declared fields' strings (the extra ones are checked above)
        unchecked = extensions if checked_extensions else {}
        nul = find_nul({k: v for k, v in raw.items() if k not in unchecked and k != "data"}) or (
            find_nul({k: v for k, v in data.items() if k not in extra}, "data") if isinstance(data, dict) else None
        )
        if nul is not None:
            raise nul
    if extra or extensions:
        # Handed to msgspec under the fields' encoded name (""), so the struct is built once; copies,
        # since ``raw`` may be the caller's (``validate_envelope``).
        raw = {**raw, "": extensions}
        if extra:
            raw["data"] = {**raw["data"], "": extra}
    event: CloudEvent[Any] = msgspec.convert(raw, envelope)
    return event


def _trace_context_only(extensions: dict[str, Any]) -> bool:
    """The extensions are only the tracing ones, as strings jsonb stores: their names need no check, and
    their values only these (a traced producer sends them on every record; the generic checks cost
    a measured share of decoding). Their NULs are caught below, with every declared field's."""
    if len(extensions) == 1:  # nearly always: a traceparent alone
        value = extensions.get("traceparent")
        return type(value) is str and len(value) <= EXTRA_TEXT_MAX
    return extensions.keys() <= _TRACE_EXTENSIONS and all(
        type(v) is str and len(v) <= EXTRA_TEXT_MAX for v in extensions.values()
    )


def _extras(raw: dict[str, Any], declared: frozenset[str]) -> dict[str, Any]:
    if len(raw) <= len(declared) and raw.keys() <= declared:  # nearly every record: no extra field
        return {}
    names = raw.keys() - declared  # in C; then in the record's order (the payload is stored as sent)
    if len(names) == 1:
        [name] = names
        return {name: raw[name]}
    return {k: v for k, v in raw.items() if k not in declared}


@cache
def _shapes(payload: type[Payload]) -> tuple[type[CloudEvent[Any]], frozenset[str], frozenset[str]]:
    """The envelope struct of a payload struct, and the JSON member names each declares (cached per
    payload: hashing the parametrized envelope on every call was a measured cost)."""
    envelope = _envelope_model(payload)
    return envelope, _declared(envelope), _declared(payload)


def _declared(struct: type[Any]) -> frozenset[str]:
    """The JSON member names a struct declares (not ``extra``/``extensions``, whose name is empty)."""
    return frozenset(f.encode_name for f in msgspec.structs.fields(struct) if f.encode_name)


@cache
def _envelope_model(payload: type[Payload]) -> type[CloudEvent[Any]]:
    return CloudEvent[payload]  # type: ignore[valid-type]


def _invalid(exc: msgspec.ValidationError, event_id: str | None) -> InvalidEvent:
    """``data.tokens: Expected `int` <= 2147483647`` from msgspec's ``... - at `$.data.tokens```."""
    text = str(exc)
    message, found, path = text.rpartition(" - at `")
    if not found:
        message, path = text, "$`"
    where = path.rstrip("`").removeprefix("$").lstrip(".")
    if isinstance(exc.__cause__, LimitError):  # a struct's own check (__post_init__): the field is in it
        where = ".".join(part for part in (where, exc.__cause__.where) if part)
        message = exc.__cause__.message
    missing = message.startswith("Object missing required field `")
    if missing:
        field = message.removeprefix("Object missing required field `").rstrip("`")
        where = ".".join(part for part in (where, field) if part)
        message = "Field required"
    reason = Reason.MISSING_FIELD if missing else Reason.INVALID_FIELD
    return InvalidEvent(reason, f"{where}: {message}", event_id)
