"""An outcome record read as the rows it writes (pure: no I/O), or its rejection.

Outcome records are read into plain rows, not through the ``Outcome`` model: they are our own
worker's output, and validating each one again was a fifth of the projection's time. msgspec reads
them typed, and orjson reads whatever that does not take, the two held to one result: each reading
takes the record apart in its own way, and both hand the parts to one builder of the rows
(``_event_row``, ``_fact_row``). Their facts' columns and time fields come from the fact models
(``domain.outputs.FACT_KINDS``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Union
from uuid import UUID

import msgspec
import orjson

from salesflow.domain.outputs import FACT_KINDS
from salesflow.domain.records import RecordIn
from salesflow.projection.items import FACT_COLUMNS, FACT_TIMES, OutcomeRows, Rejection, RejectReason, Row, timestamp


def outcome_rows(record: RecordIn) -> OutcomeRows | Rejection:
    """An outcome record's rows, or its rejection as ``malformed_outcome``."""
    try:
        return parse_outcome(record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return Rejection(record, RejectReason.MALFORMED_OUTCOME, f"{type(exc).__name__}: {exc}")


def parse_outcome(record: RecordIn) -> OutcomeRows:
    """Raises ``ValueError``/``KeyError``/``TypeError`` on an outcome that is not one.

    The typed reading (``read_typed``) first; where it does not take a record, the exact one decides."""
    try:
        return read_typed(record)
    except ValueError:  # msgspec's errors are ValueErrors; so are the checks below
        return parse_outcome_exact(record)


def fact_rows(outcomes: list[OutcomeRows]) -> dict[str, list[Row]]:
    """Facts grouped by kind, each a row for its table."""
    grouped: dict[str, list[Row]] = {}
    for outcome in outcomes:
        for kind, rows in outcome.facts.items():
            grouped.setdefault(kind, []).extend(rows)
    return grouped


def _event_row(
    event_id: UUID,
    tenant_id: str,
    processed_at: datetime,
    *,
    event_type: Any,
    lead_id: Any,
    status: Any,
    created_at: datetime,
    error_message: Any,
    attempts: Any,
    replay: Any,
    position: tuple[Any, Any, Any],
) -> Row:
    """The outcome's ``events`` row. Keyword arguments, so that each reading takes its parts in the
    order it always has (the first defect found is the one a rejection names)."""
    topic, partition, offset = position
    return {
        "id": event_id,
        "type": event_type,
        "tenant_id": tenant_id,
        "lead_id": lead_id,
        "status": status,
        "created_at": created_at,
        "processed_at": processed_at,
        "error_message": error_message,
        "attempts": attempts,
        "replay_count": 1 if replay else 0,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
    }


def _fact_row(kind: str, row: Row, event_id: UUID, tenant_id: str) -> Row:
    """``row`` of a fact of ``kind``, its times read; raises ``ValueError`` for one of another event."""
    # A fact belongs to its outcome's event and tenant: the projection replaces facts by event id.
    if row["event_id"] != event_id or row["tenant_id"] != tenant_id:
        raise ValueError(f"outcome of {event_id} carries a fact of another event or tenant")
    for name in FACT_TIMES[kind]:
        if row[name] is not None:
            row[name] = timestamp(row[name])
    return row


def parse_outcome_exact(record: RecordIn) -> OutcomeRows:
    """The definition of an outcome record's rows (and of the errors that reject one), by orjson."""
    raw = orjson.loads(record.value or b"")
    event_id = UUID(raw["event_id"])
    tenant_id = _text(raw["tenant_id"], "tenant_id")
    processed_at = timestamp(raw["processed_at"])
    position = raw["position"]
    event = _event_row(
        event_id,
        tenant_id,
        processed_at,
        event_type=raw["type"],
        lead_id=raw["lead_id"],
        status=raw["status"],
        created_at=timestamp(raw["occurred_at"]),
        error_message=raw.get("error_message"),
        attempts=raw["attempts"],
        replay=raw.get("replay"),
        position=(position["topic"], position["partition"], position["offset"]),
    )
    facts: dict[str, list[Row]] = {}
    for fact in raw.get("facts", ()):
        kind = fact.get("kind")
        if kind not in FACT_KINDS:
            raise ValueError(f"outcome of {event_id} has a fact of unknown kind {kind!r}")
        row = {name: fact.get(name) for name in FACT_COLUMNS[kind]}
        row["event_id"] = UUID(row["event_id"])
        facts.setdefault(kind, []).append(_fact_row(kind, row, event_id, tenant_id))
    return OutcomeRows(record, event_id, tenant_id, processed_at, event, facts)


# The typed reading: msgspec decodes an outcome record into structs (C), ids included, instead of a
# dict that Python then takes apart: measured at 0.64 x the time of the exact reading. Its types only
# narrow what it takes, so that whatever it does take reads as the exact reading reads it (the
# scalar JSON values those keys hold, ints within 64 bits as orjson reads them, times through the same
# ``timestamp``; ids in the forms both accept, to the same UUID); anything else (another type, a
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
_FACT_OF_STRUCT = {struct: (kind, FACT_COLUMNS[kind]) for kind, struct in zip(FACT_KINDS, _FACT_STRUCTS, strict=True)}
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


def read_typed(record: RecordIn) -> OutcomeRows:
    """An outcome record's rows as ``parse_outcome_exact`` makes them; raises ``ValueError`` for any
    record it does not take (a malformed one included: the exact reading then says why)."""
    raw = _decode_outcome(record.value or b"")
    event_id, tenant_id, position = raw.event_id, raw.tenant_id, raw.position
    processed_at = timestamp(raw.processed_at)
    event = _event_row(
        event_id,
        tenant_id,
        processed_at,
        event_type=raw.type,
        lead_id=raw.lead_id,
        status=raw.status,
        created_at=timestamp(raw.occurred_at),
        error_message=raw.error_message,
        attempts=raw.attempts,
        replay=raw.replay,
        position=(position.topic, position.partition, position.offset),
    )
    facts: dict[str, list[Row]] = {}
    fact: Any
    for fact in raw.facts:
        kind, columns = _FACT_OF_STRUCT[type(fact)]
        row = dict(zip(columns, _as_tuple(fact), strict=True))
        facts.setdefault(kind, []).append(_fact_row(kind, row, event_id, tenant_id))
    return OutcomeRows(record, event_id, tenant_id, processed_at, event, facts)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} is {type(value).__name__}, not a string")
    return value
