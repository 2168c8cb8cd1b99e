"""The contract's limits: what the pipeline accepts is what Postgres (and asyncpg) can store.

Each limit is a constrained type (``msgspec.Meta``), checked when an event is decoded and written into
the JSON Schema files of ``schemas/``, so a producer sees it before sending. The bounds:

- **Text**: no NUL (U+0000) anywhere, since Postgres ``text`` and ``jsonb`` refuse it; each string
  field has a maximum length (``ID_MAX``, ``NAME_MAX``, ...), extra fields' strings ``EXTRA_TEXT_MAX``.
  The NUL rule is checked once per event over the whole document (``find_nul``), not per field: JSON
  can only spell a NUL as ``\\u0000``, so a record without those six bytes has none.
- **Money** (``cost_usd``, ``value_usd``): finite, 0 to 99,999,999.999999, what ``NUMERIC(14,6)``
  holds once rounded to 6 decimals.
- **Counts** (``tokens``, ``step_index``, ``step_count``): at most 2**31 - 1, Postgres ``INTEGER``.
- **Times** (``time``, ``queued_at``, ``sent_at``): with a zone, from 1970-01-01T00:00:00Z (inclusive)
  to 9999-12-31T00:00:00Z (exclusive), compared in UTC (``time_problem``, run by the structs'
  ``__post_init__``). ``timestamptz`` holds far more, but Python's ``datetime`` stops at year 9999 (and
  asyncpg writes ``datetime.min`` as ``-infinity``): a day's margin keeps every such time convertible
  to any zone (UTC-12 to UTC+14) by every reader.
- **Extra fields** (kept, never refused for being unknown): names of 1 to ``EXTRA_KEY_MAX`` characters
  without NUL, values that jsonb holds: NUL-free strings of at most ``EXTRA_TEXT_MAX`` characters,
  finite numbers, integers within 64 bits, booleans, null, and arrays and objects of the same nested
  at most ``EXTRA_DEPTH_MAX`` levels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

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

# The JSON Schema (ECMA-262) form of "no NUL"; the decoder checks it with a clearer message.
NO_NUL_PATTERN = r"^[^\u0000]*$"
NUL_MESSAGE = "contains a NUL character (U+0000), which Postgres cannot store"
JSON_NUL = b"\\u0000"  # the only way JSON spells a NUL (a raw control character is not JSON)


class LimitError(ValueError):
    """A value the contract refuses: ``where`` is its path (``data.note``), ``message`` why."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def _text(min_length: int, max_length: int, **schema: Any) -> Any:
    return msgspec.Meta(
        min_length=min_length, max_length=max_length, extra_json_schema={"pattern": NO_NUL_PATTERN, **schema}
    )


Id = Annotated[str, _text(1, ID_MAX)]
Name = Annotated[str, _text(0, NAME_MAX)]
Kind = Annotated[str, _text(1, KIND_MAX)]
RequestId = Annotated[str, _text(0, REQUEST_ID_MAX)]
UriRef = Annotated[str, _text(1, URI_MAX)]
MediaType = Annotated[str, _text(0, MEDIA_TYPE_MAX)]

Money = Annotated[float, msgspec.Meta(ge=0, le=MONEY_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
PositiveCount = Annotated[int, msgspec.Meta(ge=1, le=INT32_MAX)]

# JSON Schema's core has no bounds for date-times: ajv-formats' keywords state them for validators
# that know them, and the description for people. The range itself is ``time_problem``'s.
Time = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="RFC 3339 with a zone; from 1970-01-01T00:00:00Z, before 9999-12-31T00:00:00Z (in UTC).",
        extra_json_schema={
            "formatMinimum": "1970-01-01T00:00:00Z",
            "formatExclusiveMaximum": "9999-12-31T00:00:00Z",
        },
    ),
]


def time_problem(value: datetime) -> str | None:
    """Why an aware time is out of the stored range, or None."""
    if value < TIME_MIN:
        return "Input should be greater than or equal to 1970-01-01T00:00:00Z"
    if value >= TIME_BEFORE:
        return "Input should be less than 9999-12-31T00:00:00Z"
    return None


def check_times(struct: Any, names: tuple[str, ...]) -> None:
    """Raise ``LimitError`` for the first of ``names`` (time fields of ``struct``) out of range."""
    for name in names:
        value = getattr(struct, name)
        if value is not None:
            problem = time_problem(value)
            if problem:
                raise LimitError(name, problem)


def find_nul(value: Any, where: str = "") -> LimitError | None:
    """The first NUL in a parsed JSON value, names included, as a ``LimitError`` with its path."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        at, item = stack.pop()
        if type(item) is str:
            if "\x00" in item:
                return LimitError(at, NUL_MESSAGE)
        elif type(item) is dict:
            for key in item:
                if isinstance(key, str) and "\x00" in key:
                    return LimitError(at, f"the field name {key[:50]!r} {NUL_MESSAGE}")
            stack.extend((f"{at}.{k}" if at else str(k), v) for k, v in reversed(item.items()))
        elif type(item) is list:
            stack.extend((f"{at}[{n}]", v) for n, v in reversed(list(enumerate(item))))
    return None


def storable_problem(value: Any) -> str | None:
    """Why jsonb cannot store an extra field's value as it is (with where inside it), or None."""
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
            return f"at {at[:100]}: {problem}" if at else problem
    return None


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
    """Extra fields' names: a ``LimitError`` (at the object, not the field, whose path would hold the
    offending name as it is) for the first that jsonb cannot store."""
    problem = next(filter(None, map(_name_problem, names)), None)
    if problem:
        raise LimitError("", where + problem)


def refuse_unstorable_values(extra: dict[str, Any], where: str = "") -> None:
    """Extra fields' values: a ``LimitError`` at the field for the first that jsonb cannot store."""
    for name, value in extra.items():
        problem = storable_problem(value)
        if problem:
            raise LimitError(f"{where}{name}", problem)


# What the schema states for an extra field: strings, numbers, booleans, null, arrays and objects, with
# the string rules for a top-level string (deeper values: the description).
EXTRA_VALUE_SCHEMA: dict[str, Any] = {
    "type": ["string", "number", "boolean", "null", "array", "object"],
    "pattern": NO_NUL_PATTERN,
    "maxLength": EXTRA_TEXT_MAX,
    "description": (
        f"An extra field: any JSON value jsonb stores as it is. No NUL (U+0000) in any string or name; "
        f"strings up to {EXTRA_TEXT_MAX} characters; names of 1 to {EXTRA_KEY_MAX} characters; finite "
        f"numbers, integers within 64 bits; nested up to {EXTRA_DEPTH_MAX} levels."
    ),
}
EXTRA_NAMES_SCHEMA: dict[str, Any] = {"minLength": 1, "maxLength": EXTRA_KEY_MAX, "pattern": NO_NUL_PATTERN}
