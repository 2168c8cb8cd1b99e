"""The compatibility rules, case by case: pairs of schemas and the verdict a registry in FULL mode gives
(Confluent's and Karapace's documented JSON Schema rules), then the check of the released files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from salesflow.domain.compatibility import breaks
from salesflow.domain.schema_check import check

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

NAME = {"type": "string", "maxLength": 200}
OPTIONAL_NAME = {"anyOf": [NAME, {"type": "null"}], "default": None}
OPEN = {"type": ["string", "number", "null"]}  # an open content model's extra fields


def obj(props: dict[str, Any], required: tuple[str, ...] = ("id",), extra: Any = OPEN) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"id": NAME, **props},
        "required": list(required),
        "additionalProperties": extra,
    }


BASE = obj({"name": OPTIONAL_NAME, "kind": {"$ref": "#/$defs/Kind"}}) | {"$defs": {"Kind": {"enum": ["a", "b"]}}}


def variant(**changes: Any) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = schema
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return schema


# (case, old, new, the rules broken: empty when compatible both ways)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], set[str]]] = [
    ("identical", BASE, BASE, set()),
    ("a description changed", BASE, variant(description="now documented"), set()),
    ("a title and examples added", BASE, variant(properties__id={**NAME, "title": "Id", "examples": ["x"]}), set()),
    ("a $ref inlined", BASE, variant(properties__kind={"enum": ["a", "b"]}), set()),
    ("enum values reordered", BASE, variant(**{"$defs__Kind": {"enum": ["b", "a"]}}), set()),
    ("a new required field", BASE, variant(required=["id", "name"]), {"REQUIRED_PROPERTY_ADDED"}),
    ("a required field removed", BASE, variant(required=[]), {"REQUIRED_PROPERTY_REMOVED"}),
    (
        "a required field dropped entirely",
        BASE,
        variant(properties__id=None, required=[]),
        {"REQUIRED_PROPERTY_REMOVED", "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL"},
    ),
    (
        "a type narrowed (number to integer)",
        variant(properties__id={"type": "number"}),
        variant(properties__id={"type": "integer"}),
        {"TYPE_NARROWED"},
    ),
    (
        "a type widened (integer to number)",
        variant(properties__id={"type": "integer"}),
        variant(properties__id={"type": "number"}),
        {"TYPE_EXTENDED"},
    ),
    ("nullable no more", BASE, variant(properties__name={**NAME, "default": None}), {"TYPE_NARROWED"}),
    (
        "nullable now",
        variant(properties__name=NAME),
        variant(properties__name={"anyOf": [NAME, {"type": "null"}]}),
        {"TYPE_EXTENDED"},
    ),
    (
        "a type changed",
        BASE,
        variant(properties__id={"type": "boolean"}),
        {"TYPE_NARROWED", "TYPE_EXTENDED", "MAX_LENGTH_REMOVED"},
    ),
    ("an enum value added", BASE, variant(**{"$defs__Kind": {"enum": ["a", "b", "c"]}}), {"ENUM_ARRAY_EXTENDED"}),
    ("an enum value removed", BASE, variant(**{"$defs__Kind": {"enum": ["a"]}}), {"ENUM_ARRAY_NARROWED"}),
    (
        "a max length lowered",
        BASE,
        variant(properties__id={"type": "string", "maxLength": 100}),
        {"MAX_LENGTH_DECREASED"},
    ),
    (
        "a max length raised",
        BASE,
        variant(properties__id={"type": "string", "maxLength": 300}),
        {"MAX_LENGTH_INCREASED"},
    ),
    (
        "a minimum added",
        variant(properties__id={"type": "integer"}),
        variant(properties__id={"type": "integer", "minimum": 0}),
        {"MINIMUM_ADDED"},
    ),
    (
        "a minimum raised",
        variant(properties__id={"type": "integer", "minimum": 0}),
        variant(properties__id={"type": "integer", "minimum": 1}),
        {"MINIMUM_INCREASED"},
    ),
    ("a pattern added", BASE, variant(properties__id={**NAME, "pattern": "^a"}), {"PATTERN_ADDED"}),
    (
        "a format changed",
        variant(properties__id={**NAME, "format": "uuid"}),
        variant(properties__id={**NAME, "format": "email"}),
        {"FORMAT_CHANGED"},
    ),
    (
        "a time bound tightened",
        variant(properties__id={"type": "string", "formatMinimum": "1970-01-01T00:00:00Z"}),
        variant(properties__id={"type": "string", "formatMinimum": "2000-01-01T00:00:00Z"}),
        {"FORMAT_MINIMUM_INCREASED"},
    ),
    ("additionalProperties closed", BASE, variant(additionalProperties=False), {"ADDITIONAL_PROPERTIES_NARROWED"}),
    ("additionalProperties opened", variant(additionalProperties=False), BASE, {"ADDITIONAL_PROPERTIES_EXTENDED"}),
    (
        "additionalProperties narrowed",
        BASE,
        variant(additionalProperties={"type": ["string", "null"]}),
        {"TYPE_NARROWED"},
    ),
    (
        "an optional field added to an open model",
        BASE,
        variant(properties__note={"type": "boolean"}),
        {"PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"},
    ),
    (
        "an optional field added to a closed model",
        variant(additionalProperties=False),
        variant(additionalProperties=False, properties__note={"type": "boolean"}),
        {"PROPERTY_ADDED_TO_CLOSED_CONTENT_MODEL"},
    ),
    ("a field added as the extra fields were", BASE, variant(properties__note=OPEN), set()),
    (
        "a default changed",
        variant(properties__flag={"type": "boolean", "default": False}),
        variant(properties__flag={"type": "boolean", "default": True}),
        {"DEFAULT_CHANGED"},
    ),
    (
        "a const changed",
        variant(properties__id={"const": "x"}),
        variant(properties__id={"const": "y"}),
        {"CONST_CHANGED"},
    ),
    (
        "a keyword this checker does not know",
        BASE,
        variant(properties__id={**NAME, "contentEncoding": "base64"}),
        {"KEYWORD_CHANGED"},
    ),
]


@pytest.mark.parametrize(("case", "old", "new", "rules"), CASES, ids=[c[0] for c in CASES])
def test_each_pair_gets_the_registrys_verdict(case: str, old: Any, new: Any, rules: set[str]) -> None:
    found = breaks(old, new)
    assert {b.rule for b in found} == rules, [str(b) for b in found]


def test_a_break_names_its_path_rule_and_direction() -> None:
    [found] = breaks(BASE, variant(**{"$defs__Kind": {"enum": ["a", "b", "c"]}}))
    assert (found.path, found.rule, found.direction) == ("kind", "ENUM_ARRAY_EXTENDED", "forward")
    assert (
        str(found)
        == 'kind: ENUM_ARRAY_EXTENDED: accepts "c" now (a consumer of the old schema refuses data of the new one)'
    )
    [found] = breaks(BASE, variant(required=["id", "name"]))
    assert (found.path, found.direction) == ("name", "backward")


def test_the_code_is_compatible_with_every_released_schema() -> None:
    refused = [str(f) for f in check(SCHEMAS) if f.refused]
    assert refused == [], "see docs/how-to/change-a-payload.md"


def test_an_edited_released_file_and_a_missing_one_are_refused(tmp_path: Path) -> None:
    """What CI sees when a payload model changes under a released file: the file stands for the
    version the producers and the topic already hold."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    released = tmp_path / "schemas" / "lead.created" / "v1.json"
    schema = json.loads(released.read_text())
    schema["$defs"]["LeadSource"]["enum"].remove("manual")  # as if the code had gained "manual"
    released.write_text(json.dumps(schema))
    (tmp_path / "schemas" / "message.sent" / "v1.json").unlink()
    found = {
        (f.file, f.message.split(":")[1].strip() if ":" in f.message else f.message)
        for f in check(tmp_path / "schemas")
        if f.refused
    }
    assert ("lead.created/v1.json", "ENUM_ARRAY_EXTENDED") in found
    assert any(file == "message.sent/v1.json" for file, _ in found)
