"""A source record read as its ``events`` row with status ``pending`` (pure: no I/O).

Only what the row needs is read, typed by msgspec, without validating the event again: the worker
does that, and dead-letters what fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
import orjson

from salesflow.domain import json_strict
from salesflow.domain.content_mode import binary_attributes
from salesflow.domain.events import PAYLOAD_MODELS, CloudEvent, EventType
from salesflow.domain.outcome import EventStatus
from salesflow.domain.records import RecordIn
from salesflow.errors import InvalidEvent
from salesflow.projection.items import PendingRow, timestamp


def pending_row(record: RecordIn, max_bytes: int) -> PendingRow | None:
    """A source record means `pending`: only what the row needs is read, without validating the
    event again (the worker does, and dead-letters it). A record that fails this cheap read (not
    JSON, no object, an unknown type, no id, tenant, lead or aware time, a repeated key) is simply not
    a pending row."""
    value = record.value
    if not value or len(value) > max_bytes:
        return None
    try:
        attributes = binary_attributes(record.headers)  # the content type decides the mode, as the decoder's
        if attributes is None:
            envelope = _read_strict(_decode_envelope, value, root="")
            payload = value.decode("utf-8")  # the event as it was sent: the jsonb column parses it
        else:
            data = _read_strict(_decode_data, value, root="data")
            envelope = msgspec.convert(attributes, _Attributes)  # text headers; binary_attributes refused repeats
            payload = orjson.dumps({**attributes, "data": orjson.Fragment(value)}).decode()
        created_at = timestamp(envelope.time)
    except (InvalidEvent, ValueError, TypeError, UnicodeDecodeError):  # msgspec's errors are ValueErrors
        return None
    row = {
        "id": envelope.id,
        "type": envelope.type,
        "tenant_id": envelope.tenantid,
        "lead_id": (envelope.data if attributes is None else data).lead_id,
        "status": EventStatus.PENDING.value,
        "created_at": created_at,
        "payload": payload,  # JSON text, as the jsonb column takes it
        "source_topic": record.topic,
        "source_partition": record.partition,
        "source_offset": record.offset,
    }
    return PendingRow(record=record, event_id=envelope.id, tenant_id=envelope.tenantid, row=row)


# The pending row's reading: msgspec decodes the few fields it needs (C), ids included, in one pass over
# the bytes. Every other member the contract names (the envelope's attributes, the known extensions,
# the payloads' fields) is declared too, ``UNSET`` when absent, so that
# the decoder's repeated-key rule (``json_strict``) can be kept without a second parse: the document
# spells at most ``key_token_bound`` keys, and when the members read are as many, no key was repeated.
# Anything else (a repeat, an undeclared or nested key) goes to the exact check.
_Tenant = Annotated[str, msgspec.Meta(min_length=1)]
_EventTypeName = Literal[tuple(t.value for t in EventType)]  # type: ignore[valid-type]  # read as plain text
_READ_FIELDS: dict[str, Any] = {"specversion": Literal["1.0"], "id": UUID, "type": _EventTypeName, "tenantid": _Tenant}
_EXTENSIONS = ("traceparent", "tracestate")


def _declared(struct: type[msgspec.Struct]) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(struct) if f.encode_name]  # "" holds the extras


def _counted_struct(name: str, read: dict[str, Any], members: Iterable[str]) -> Any:
    others = [(m, Any, msgspec.UNSET) for m in dict.fromkeys(members) if m not in read]
    return msgspec.defstruct(name, [*read.items(), *others], kw_only=True)


_Data = _counted_struct("_PendingData", {"lead_id": str}, [m for p in PAYLOAD_MODELS.values() for m in _declared(p)])
_Envelope = _counted_struct(
    "_PendingEnvelope", {**_READ_FIELDS, "time": str, "data": _Data}, [*_declared(CloudEvent), *_EXTENSIONS]
)
_Attributes = msgspec.defstruct("_PendingAttributes", [*_READ_FIELDS.items(), ("time", str)], kw_only=True)
_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_decode_data = msgspec.json.Decoder(_Data).decode
_ENVELOPE_MEMBERS, _DATA_MEMBERS = len(msgspec.structs.fields(_Envelope)), len(msgspec.structs.fields(_Data))


def _members_read(value: Any) -> int:
    """How many members of the JSON object (and of its ``data``) the typed reading filled."""
    if isinstance(value, _Data):
        return _DATA_MEMBERS - msgspec.structs.astuple(value).count(msgspec.UNSET)
    return _ENVELOPE_MEMBERS - msgspec.structs.astuple(value).count(msgspec.UNSET) + _members_read(value.data)


def _read_strict(decode: Any, value: bytes, *, root: str) -> Any:
    """``value`` read typed; raises ``InvalidEvent(duplicate_key)`` where the decoder would."""
    read = decode(value)
    if json_strict.key_token_bound(value) != _members_read(read):  # equal for nearly every record
        json_strict.reject_duplicate_keys(value, root=root)
    return read
