"""Hypothesis strategies for payloads, read from the payload structs themselves (``msgspec.inspect``),
so that a new version's upcaster is tested without a strategy written for it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
LONG = 40  # longer strings add nothing here but time; the limits are tested in test_limits.py
JSON_VALUES = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(TEXT, max_size=10)


def payload_dicts(model: type[msgspec.Struct], extra_names: list[str] = ()) -> st.SearchStrategy[dict[str, Any]]:  # type: ignore[assignment]
    """Payloads of ``model`` as JSON objects: its fields (optional ones sometimes left out) and extra
    fields, named at random or like ``extra_names`` (a newer version's fields: the awkward case)."""
    info = mi.type_info(model)
    assert isinstance(info, mi.StructType)
    required = {f.encode_name: _values(f.type) for f in info.fields if f.required and f.encode_name}
    optional = {f.encode_name: _values(f.type) for f in info.fields if not f.required and f.encode_name}
    names = (
        st.sampled_from(list(extra_names)) | st.text(TEXT, min_size=1, max_size=12)
        if extra_names
        else st.text(TEXT, min_size=1, max_size=12)
    )
    extras = st.dictionaries(
        names, JSON_VALUES | st.dictionaries(st.text(TEXT, max_size=5), JSON_VALUES, max_size=3), max_size=3
    )
    declared = st.fixed_dictionaries(required, optional=optional)
    return st.tuples(extras, declared).map(lambda pair: {**pair[0], **pair[1]})


def _values(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.Metadata):  # Annotated[..., Meta(...)]: the constraints are on the inner type
        return _values(t.type)
    if isinstance(t, mi.StrType):
        return st.text(TEXT, min_size=t.min_length or 0, max_size=min(t.max_length or LONG, LONG))
    if isinstance(t, mi.IntType):
        return st.integers(min_value=t.ge, max_value=t.le)
    if isinstance(t, mi.FloatType):
        return st.floats(min_value=t.ge, max_value=t.le, allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.EnumType):
        return st.sampled_from([member.value for member in t.cls])
    if isinstance(t, mi.UnionType):
        return st.one_of(*(_values(member) for member in t.types))
    if isinstance(t, mi.DateTimeType):
        times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 1), timezones=st.just(UTC))
        return times.map(lambda value: value.isoformat())
    if isinstance(t, mi.StructType):
        return payload_dicts(t.cls)
    raise NotImplementedError(f"no strategy for {t!r}: add one here")
