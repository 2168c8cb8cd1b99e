"""Statuses and reasons, from the enums: an event's status, why a record was dead-lettered, and why
the projection kept a record aside. Each member's description is the comment beside it in the code,
or, where the code has none, the line in ``DESCRIPTIONS`` here; a member with neither fails
``tests/unit/test_docs_reference.py``."""

from __future__ import annotations

import inspect
import re
from enum import StrEnum

from docsgen.markdown import code, generated_note, table

# For members whose enum carries no comment of its own.
DESCRIPTIONS = {
    "pending": "seen on its source topic; no outcome yet",
    "processed": "every handler succeeded",
    "failed": "a handler still failed after its retries (`SALESFLOW_HANDLER_MAX_ATTEMPTS`); the error is kept",
    "dead_lettered": "the record could not be decoded or validated (a dead letter below)",
    "empty": "an empty value, tombstones included",
    "too_large": "over `SALESFLOW_MAX_EVENT_BYTES`",
    "invalid_utf8": "the value is not UTF-8",
    "not_json": "the value is not JSON",
    "not_an_object": "JSON, but not an object",
    "invalid_headers": "binary mode: the `ce_*` headers are malformed",
    "unsupported_specversion": "`specversion` is not `1.0`",
    "unknown_type": "a `type` the contract does not define",
    "unsupported_schema": "a `dataschema` version the contract does not have",
    "missing_field": "a required attribute or payload field is missing",
    "invalid_field": "a field of the wrong type or beyond the contract's limits; the detail names its path",
}


def enums() -> list[tuple[str, type[StrEnum], str]]:
    """The enums documented here: (section title, enum, what a member means)."""
    from salesflow.domain.outcome import EventStatus
    from salesflow.errors import DeadLetterReason
    from salesflow.projection.rows import RejectReason

    return [
        ("Event statuses", EventStatus, "`events.status`, the API's `status`, the metrics' `status` label"),
        ("Dead-letter reasons", DeadLetterReason, "the `salesflow.dlq.reason` header, `dead_letters.reason`"),
        ("Rejected-record reasons", RejectReason, "`rejected_records.reason`, the projection's metric label"),
    ]


def member_comments(enum: type[StrEnum]) -> dict[str, str]:
    """Each member's comment in the source: at the end of its line, or the lines right above it."""
    found: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(enum).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^\s+([A-Z_0-9]+)\s*=\s*\"([^\"]+)\"(?:\s*#\s*(.*))?$", line)
        if match:
            found[match.group(2)] = " ".join([*above, match.group(3) or ""]).strip()
        above = []
    return found


def description(enum: type[StrEnum], value: str) -> str:
    return member_comments(enum).get(value) or DESCRIPTIONS.get(value, "")


def render() -> str:
    """The whole page."""
    parts = ["# Statuses and reasons\n\n", generated_note("docsgen/reasons_ref.py")]
    for title, enum, where in enums():
        doc = inspect.cleandoc(enum.__dict__.get("__doc__") or "")
        rows = [(code(member.value), description(enum, member.value)) for member in enum]
        parts.append(f"## {title}\n\n{doc} Where it shows: {where}.\n\n" + table(["value", "meaning"], rows) + "\n")
    return "".join(parts)
