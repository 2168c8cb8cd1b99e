"""Rejected records as rows of ``rejected_records`` (pure): whatever the record holds, the row is one
Postgres can store (no NUL in text, headers as base64), so keeping a bad record can never fail on it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from salesflow.projection.rows import Rejection

REJECTED_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "reason",
    "error",
    "event_id",
    "tenant_id",
    "record_key",
    "raw",
    "headers",
    "record_timestamp",
)
MAX_ERROR_CHARS = 2000

INSERT_REJECTED = f"""
INSERT INTO rejected_records ({", ".join(f'"{c}"' for c in REJECTED_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(REJECTED_COLUMNS) + 1))})
ON CONFLICT DO NOTHING
"""


def storable_text(value: str | None, limit: int | None = None) -> str | None:
    """Text Postgres accepts: a NUL shown as ``\\u0000``, lone surrogates replaced, cut to ``limit``."""
    if value is None:
        return None
    text = value.replace("\x00", "\\u0000").encode("utf-8", "replace").decode("utf-8")
    return text if limit is None else text[:limit]


def rejected_row(rejection: Rejection) -> tuple[Any, ...]:
    """The ``rejected_records`` row of a rejection, in ``REJECTED_COLUMNS`` order."""
    record = rejection.record
    headers = [[storable_text(k), base64.b64encode(v).decode()] for k, v in record.headers]
    stamp = record.timestamp_ms
    return (
        record.topic,
        record.partition,
        record.offset,
        rejection.reason.value,
        storable_text(rejection.error, MAX_ERROR_CHARS),
        rejection.event_id,
        storable_text(rejection.tenant_id, 200),
        record.key,
        record.value,
        orjson.dumps(headers).decode(),
        datetime.fromtimestamp(stamp / 1000, UTC) if stamp is not None and stamp >= 0 else None,
    )
