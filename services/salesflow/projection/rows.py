"""Kafka records into table rows (pure: no I/O), one parsed item per record, ready for ``batch``.

Outcome records are read into plain rows, not through the ``Outcome`` model: they are our own
worker's output, and validating each one again was a fifth of the projection's time. msgspec reads
them typed, and orjson reads whatever that does not take, the two held to one result. Their
facts' columns and time fields come from the fact models (``domain.outputs.FACT_KINDS``). A record
that cannot be read (malformed JSON, a missing key, a bad date or id, an unknown fact kind) becomes a
``Rejection`` with its reason: it is kept, never raised, so it cannot stop the records after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Union, get_args
from uuid import UUID

import msgspec
import orjson

from salesflow.domain import json_strict
from salesflow.domain import records as r
from salesflow.domain.content_mode import binary_attributes
from salesflow.domain.events import PAYLOAD_MODELS, CloudEvent, EventType
from salesflow.domain.outcome import EventStatus
from salesflow.domain.outputs import FACT_KINDS, fact_columns
from salesflow.domain.records import RecordIn, text_header
from salesflow.errors import InvalidEvent

Row = dict[str, Any]


def _is_time(annotation: Any) -> bool:
    return annotation is datetime or datetime in get_args(annotation)


# Per fact kind: its table's columns (the struct's fields; its tag, ``kind``, is not one) and its time
# fields.
FACT_COLUMNS: dict[str, tuple[str, ...]] = {kind: fact_columns(model) for kind, model in FACT_KINDS.items()}
FACT_TIMES: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in msgspec.structs.fields(model) if _is_time(f.type)) for kind, model in FACT_KINDS.items()
}


class RejectReason(StrEnum):
    """Why the projection kept a record aside instead of writing it (``rejected_records.reason``)."""

    INVALID_VALUE = "invalid_value"  # Postgres or the driver refused a value of it
    MALFORMED_OUTCOME = "malformed_outcome"  # an outcome record that does not read as one
    MALFORMED_DEAD_LETTER = "malformed_dead_letter"  # a dead-letter record with unreadable headers
    ID_CONFLICT = "id_conflict"  # its event id belongs to another tenant


@dataclass(frozen=True)
class Rejection:
    """A record the projection keeps aside, with why."""

    record: RecordIn
    reason: RejectReason
    error: str
    event_id: UUID | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class PendingRow:
    """A source record that decodes as an event: its ``events`` row with status ``pending``."""

    record: RecordIn
    event_id: UUID
    tenant_id: str
    row: Row


@dataclass(frozen=True)
class OutcomeRows:
    """One outcome record as the rows it writes: its ``events`` row and its facts by kind."""

    record: RecordIn
    event_id: UUID
    tenant_id: str
    processed_at: datetime
    event: Row
    facts: dict[str, list[Row]]


@dataclass(frozen=True)
class DeadLetterRow:
    """A dead-letter record: its ``dead_letters`` row, and the tenant its original bytes name."""

    record: RecordIn
    event_id: UUID | None
    tenant_id: str | None
    row: Row


Item = PendingRow | OutcomeRows | DeadLetterRow | Rejection


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
        created_at = _timestamp(envelope.time)
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
        return _DATA_MEMBERS - _as_tuple(value).count(msgspec.UNSET)
    return _ENVELOPE_MEMBERS - _as_tuple(value).count(msgspec.UNSET) + _members_read(value.data)


def _read_strict(decode: Any, value: bytes, *, root: str) -> Any:
    """``value`` read typed; raises ``InvalidEvent(duplicate_key)`` where the decoder would."""
    read = decode(value)
    if json_strict.key_token_bound(value) != _members_read(read):  # equal for nearly every record
        json_strict.reject_duplicate_keys(value, root=root)
    return read


def outcome_rows(record: RecordIn) -> OutcomeRows | Rejection:
    """An outcome record's rows, or its rejection as ``malformed_outcome``."""
    try:
        return parse_outcome(record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return Rejection(record, RejectReason.MALFORMED_OUTCOME, f"{type(exc).__name__}: {exc}")


def parse_outcome(record: RecordIn) -> OutcomeRows:
    """Raises ``ValueError``/``KeyError``/``TypeError`` on an outcome that is not one.

    The typed reading (``_read_typed``) first; where it does not take a record, the exact one decides."""
    try:
        return _read_typed(record)
    except ValueError:  # msgspec's errors are ValueErrors; so are the checks below
        return parse_outcome_exact(record)


def parse_outcome_exact(record: RecordIn) -> OutcomeRows:
    """The definition of an outcome record's rows (and of the errors that reject one), by orjson."""
    raw = orjson.loads(record.value or b"")
    event_id = UUID(raw["event_id"])
    tenant_id = _text(raw["tenant_id"], "tenant_id")
    processed_at = _timestamp(raw["processed_at"])
    position = raw["position"]
    event = {
        "id": event_id,
        "type": raw["type"],
        "tenant_id": tenant_id,
        "lead_id": raw["lead_id"],
        "status": raw["status"],
        "created_at": _timestamp(raw["occurred_at"]),
        "processed_at": processed_at,
        "error_message": raw.get("error_message"),
        "attempts": raw["attempts"],
        "replay_count": 1 if raw.get("replay") else 0,
        "source_topic": position["topic"],
        "source_partition": position["partition"],
        "source_offset": position["offset"],
    }
    facts: dict[str, list[Row]] = {}
    for fact in raw.get("facts", ()):
        kind = fact.get("kind")
        if kind not in FACT_KINDS:
            raise ValueError(f"outcome of {event_id} has a fact of unknown kind {kind!r}")
        row = {name: fact.get(name) for name in FACT_COLUMNS[kind]}
        row["event_id"] = UUID(row["event_id"])
        # A fact belongs to its outcome's event and tenant: the projection replaces facts by event id.
        if row["event_id"] != event_id or row["tenant_id"] != tenant_id:
            raise ValueError(f"outcome of {event_id} carries a fact of another event or tenant")
        for name in FACT_TIMES[kind]:
            if row[name] is not None:
                row[name] = _timestamp(row[name])
        facts.setdefault(kind, []).append(row)
    return OutcomeRows(record, event_id, tenant_id, processed_at, event, facts)


# The typed reading: msgspec decodes an outcome record into structs (C), ids included, instead of a
# dict that Python then takes apart: measured at 0.64 x the time of the exact reading. Its types only
# narrow what it takes, so that whatever it does take reads as the exact reading reads it (the
# scalar JSON values those keys hold, ints within 64 bits as orjson reads them, times through the same
# ``_timestamp``; ids in the forms both accept, to the same UUID); anything else (another type, a
# nested value, a form one of them refuses) raises, and the exact reading decides.
# ``tests/unit/test_outcome_readings.py`` holds the two to the same rows and rejections.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = str | _Int64 | float | bool | None


class _Position(msgspec.Struct):
    topic: _Scalar
    partition: _Scalar
    offset: _Scalar


def _fact_struct(kind: str) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (name, UUID) if name == "event_id" else (name, str | None if name in FACT_TIMES[kind] else _Scalar, None)
        for name in FACT_COLUMNS[kind]
    ]
    return msgspec.defstruct(f"_{kind}_fact", fields, tag_field="kind", tag=kind, kw_only=True)


_FACT_STRUCTS = tuple(_fact_struct(kind) for kind in FACT_KINDS)
_FACT_OF_STRUCT = {
    struct: (kind, FACT_COLUMNS[kind], FACT_TIMES[kind]) for kind, struct in zip(FACT_KINDS, _FACT_STRUCTS, strict=True)
}
_AnyFactStruct: Any = Union[_FACT_STRUCTS]  # noqa: UP007  # tagged by "kind"


class _Outcome(msgspec.Struct):
    event_id: UUID
    type: _Scalar
    tenant_id: str
    lead_id: _Scalar
    status: _Scalar
    occurred_at: str
    processed_at: str
    attempts: _Scalar
    position: _Position
    error_message: _Scalar = None
    replay: bool = False
    facts: list[_AnyFactStruct] = []  # msgspec copies a mutable default


_decode_outcome = msgspec.json.Decoder(_Outcome).decode
_as_tuple = msgspec.structs.astuple


def _read_typed(record: RecordIn) -> OutcomeRows:
    """An outcome record's rows as ``parse_outcome_exact`` makes them; raises ``ValueError`` for any
    record it does not take (a malformed one included: the exact reading then says why)."""
    raw = _decode_outcome(record.value or b"")
    event_id, tenant_id, position = raw.event_id, raw.tenant_id, raw.position
    processed_at = _timestamp(raw.processed_at)
    event = {
        "id": event_id,
        "type": raw.type,
        "tenant_id": tenant_id,
        "lead_id": raw.lead_id,
        "status": raw.status,
        "created_at": _timestamp(raw.occurred_at),
        "processed_at": processed_at,
        "error_message": raw.error_message,
        "attempts": raw.attempts,
        "replay_count": 1 if raw.replay else 0,
        "source_topic": position.topic,
        "source_partition": position.partition,
        "source_offset": position.offset,
    }
    facts: dict[str, list[Row]] = {}
    fact: Any
    for fact in raw.facts:
        if fact.event_id != event_id or fact.tenant_id != tenant_id:
            raise ValueError("a fact of another event or tenant")
        kind, columns, times = _FACT_OF_STRUCT[type(fact)]
        row = dict(zip(columns, _as_tuple(fact), strict=True))
        for name in times:
            if row[name] is not None:
                row[name] = _timestamp(row[name])
        facts.setdefault(kind, []).append(row)
    return OutcomeRows(record, event_id, tenant_id, processed_at, event, facts)


def dead_letter_row(record: RecordIn) -> DeadLetterRow | Rejection:
    """A dead-letter record's ``dead_letters`` row, or its rejection when its headers do not read."""
    try:
        partition = int(text_header(record, r.DLQ_ORIGINAL_PARTITION) or record.partition)
        offset = int(text_header(record, r.DLQ_ORIGINAL_OFFSET) or record.offset)
    except ValueError as exc:
        return Rejection(record, RejectReason.MALFORMED_DEAD_LETTER, f"ValueError: {exc}")
    event_id = _uuid_or_none(text_header(record, r.DLQ_EVENT_ID))
    row = {
        "topic": text_header(record, r.DLQ_ORIGINAL_TOPIC) or record.topic,
        "partition": partition,
        "offset": offset,
        "event_id": event_id,
        "reason": text_header(record, r.DLQ_REASON) or "unknown",
        "detail": text_header(record, r.DLQ_DETAIL),
        "record_key": record.key,
        "raw": record.value,
        "headers": {k: v.decode("utf-8", "replace") for k, v in record.headers},
        "original_timestamp": _from_millis(text_header(record, r.DLQ_ORIGINAL_TIMESTAMP)),
    }
    return DeadLetterRow(record, event_id, claimed_tenant(record) if event_id else None, row)


def claimed_tenant(record: RecordIn) -> str | None:
    """The tenant a dead letter's original record names (structured or binary mode), if any."""
    try:
        raw = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        raw = None
    tenant = raw.get("tenantid") if isinstance(raw, dict) else text_header(record, "ce_tenantid")
    return tenant if isinstance(tenant, str) and tenant else None


def fact_rows(outcomes: list[OutcomeRows]) -> dict[str, list[Row]]:
    """Facts grouped by kind, each a row for its table."""
    grouped: dict[str, list[Row]] = {}
    for outcome in outcomes:
        for kind, rows in outcome.facts.items():
            grouped.setdefault(kind, []).extend(rows)
    return grouped


def dead_lettered_event_row(dead_letter: DeadLetterRow) -> Row:
    row = dead_letter.row
    return {
        "id": dead_letter.event_id,
        "tenant_id": dead_letter.tenant_id,
        "status": EventStatus.DEAD_LETTERED.value,
        "error_message": f"{row['reason']}: {row['detail']}",
        "source_topic": row["topic"],
        "source_partition": row["partition"],
        "source_offset": row["offset"],
    }


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} is {type(value).__name__}, not a string")
    return value


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed


def _from_millis(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value and value.isdigit() else None
    except (OverflowError, ValueError, OSError):
        return None
