"""The contract's limits: what the pipeline accepts is what Postgres (and asyncpg) can store.

Each limit is a constrained type, checked when an event is validated and written into the JSON Schema
files of ``schemas/``, so a producer sees it before sending. The bounds:

- **Text**: no NUL (U+0000) anywhere, since Postgres ``text`` and ``jsonb`` refuse it; each string
  field has a maximum length (``ID_MAX``, ``NAME_MAX``, ...), extra fields' strings ``EXTRA_TEXT_MAX``.
- **Money** (``cost_usd``, ``value_usd``): finite, 0 to 99,999,999.999999, what ``NUMERIC(14,6)``
  holds once rounded to 6 decimals.
- **Counts** (``tokens``, ``step_index``, ``step_count``): at most 2**31 - 1, Postgres ``INTEGER``.
- **Times** (``time``, ``queued_at``, ``sent_at``): with a zone, from 1970-01-01T00:00:00Z (inclusive)
  to 9999-12-31T00:00:00Z (exclusive), compared in UTC. ``timestamptz`` holds far more, but Python's
  ``datetime`` stops at year 9999 (and asyncpg writes ``datetime.min`` as ``-infinity``): a day's margin
  keeps every such time convertible to any zone (UTC-12 to UTC+14) by every reader.
- **Extra fields** (kept by ``extra="allow"``): names of 1 to ``EXTRA_KEY_MAX`` characters without NUL,
  values that jsonb holds and pydantic serialises: NUL-free strings of at most ``EXTRA_TEXT_MAX``
  characters, finite numbers, integers within 64 bits, booleans, null, and arrays and objects of the
  same nested at most ``EXTRA_DEPTH_MAX`` levels (pydantic's serialiser gives up near 255).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

ID_MAX = 200  # ids: lead, action, message, sequence, owner, tenant
NAME_MAX = 200  # names: campaign, model
KIND_MAX = 100  # open vocabularies: action_type, action
REQUEST_ID_MAX = 256
URI_MAX = 2048  # source, dataschema
MEDIA_TYPE_MAX = 255  # datacontenttype (RFC 6838: 127 + "/" + 127)
EXTRA_KEY_MAX = 200
EXTRA_TEXT_MAX = 65_536
EXTRA_DEPTH_MAX = 32  # levels of arrays and objects in one extra field

MONEY_MAX = 99_999_999.999999  # NUMERIC(14,6)
INT32_MAX = 2**31 - 1  # INTEGER
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_BEFORE = datetime(9999, 12, 31, tzinfo=UTC)

# The JSON Schema (ECMA-262) form of "no NUL"; the model checks it with a clearer message.
NO_NUL_PATTERN = r"^[^\u0000]*$"
NUL_MESSAGE = "contains a NUL character (U+0000), which Postgres cannot store"


def _refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul_character", NUL_MESSAGE)
    return value


class _NoNul:
    """Annotation: the string holds no NUL. Checked on validation; stated in the schema as a pattern."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_refuse_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = NO_NUL_PATTERN
        return json_schema


NO_NUL = _NoNul()

Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX), NO_NUL]
Name = Annotated[str, StringConstraints(max_length=NAME_MAX), NO_NUL]
Kind = Annotated[str, StringConstraints(min_length=1, max_length=KIND_MAX), NO_NUL]
RequestId = Annotated[str, StringConstraints(max_length=REQUEST_ID_MAX), NO_NUL]
UriRef = Annotated[str, StringConstraints(min_length=1, max_length=URI_MAX), NO_NUL]
MediaType = Annotated[str, StringConstraints(max_length=MEDIA_TYPE_MAX), NO_NUL]

Money = Annotated[float, Field(ge=0, le=MONEY_MAX, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
PositiveCount = Annotated[int, Field(ge=1, le=INT32_MAX)]

# JSON Schema's core has no bounds for date-times: ajv-formats' keywords state them for validators
# that know them, and the description for people.
Time = Annotated[
    AwareDatetime,
    Field(
        ge=TIME_MIN,
        lt=TIME_BEFORE,
        description="RFC 3339 with a zone; from 1970-01-01T00:00:00Z, before 9999-12-31T00:00:00Z (in UTC).",
        json_schema_extra={"formatMinimum": "1970-01-01T00:00:00Z", "formatExclusiveMaximum": "9999-12-31T00:00:00Z"},
    ),
]


def _storable(value: Any) -> Any:
    """An extra field's value, if jsonb stores it as it is; else a ``storable_json`` error saying where."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        where, item, depth = stack.pop()
        problem = _problem(item, depth)
        if problem is None and isinstance(item, dict):
            problem = next(filter(None, map(_name_problem, item)), None)
            stack.extend((f"{where}.{k}", v, depth + 1) for k, v in item.items())
        elif problem is None and isinstance(item, list):
            stack.extend((f"{where}[{n}]", v, depth + 1) for n, v in enumerate(item))
        if problem:
            at = where.lstrip(".")
            raise PydanticCustomError("storable_json", f"at {at[:100]}: {problem}" if at else problem)
    return value


def _problem(item: Any, depth: int) -> str | None:
    if depth > EXTRA_DEPTH_MAX:
        return f"nested deeper than {EXTRA_DEPTH_MAX} levels"
    if isinstance(item, str):
        if "\x00" in item:
            return NUL_MESSAGE
        return f"a string longer than {EXTRA_TEXT_MAX} characters" if len(item) > EXTRA_TEXT_MAX else None
    if isinstance(item, bool) or item is None or isinstance(item, (list, dict)):
        return None
    if isinstance(item, int):
        return None if INT64_MIN <= item <= INT64_MAX else "an integer outside the signed 64-bit range"
    if isinstance(item, float):
        return None if math.isfinite(item) else "not a finite number"
    return f"not a JSON value ({type(item).__name__})"


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not 1 <= len(name) <= EXTRA_KEY_MAX:
        return f"a field name must be 1 to {EXTRA_KEY_MAX} characters"
    return f"the field name {name[:50]!r} {NUL_MESSAGE}" if "\x00" in name else None


def refuse_unstorable_names(names: Iterable[Any], where: str = "") -> None:
    """Extra fields' names, checked before pydantic's own check (``ExtraName``), whose error path would
    hold the offending name as it is."""
    problem = next(filter(None, map(_name_problem, names)), None)
    if problem:
        raise PydanticCustomError("storable_json", where + problem)


# What the schema states for an extra field: strings, numbers, booleans, null, arrays and objects, with
# the string rules for a top-level string (deeper values: the description).
EXTRA_VALUE_SCHEMA: JsonSchemaValue = {
    "type": ["string", "number", "boolean", "null", "array", "object"],
    "pattern": NO_NUL_PATTERN,
    "maxLength": EXTRA_TEXT_MAX,
    "description": (
        f"An extra field: any JSON value jsonb stores as it is. No NUL (U+0000) in any string or name; "
        f"strings up to {EXTRA_TEXT_MAX} characters; names of 1 to {EXTRA_KEY_MAX} characters; finite "
        f"numbers, integers within 64 bits; nested up to {EXTRA_DEPTH_MAX} levels."
    ),
}
EXTRA_NAMES_SCHEMA: JsonSchemaValue = {"minLength": 1, "maxLength": EXTRA_KEY_MAX, "pattern": NO_NUL_PATTERN}

ExtraName = Annotated[str, StringConstraints(min_length=1, max_length=EXTRA_KEY_MAX), NO_NUL]

ExtraValue = Annotated[Any, AfterValidator(_storable), WithJsonSchema(EXTRA_VALUE_SCHEMA)]
