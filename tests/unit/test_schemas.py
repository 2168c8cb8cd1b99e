"""The JSON Schema files in ``schemas/`` are generated from the models; they must not drift."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from salesflow.domain.events import EventType
from salesflow.domain.schema_check import check
from salesflow.domain.schemas import all_schemas
from salesflow.testing.factories import event_dict

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_schema_files_match_the_models() -> None:
    """Every version has its file; a released file is never rewritten, so the code may differ from it
    only in annotations (``salesflow schemas check``, tests/unit/test_schema_compat.py, judges more)."""
    generated = all_schemas()
    on_disk = {str(p.relative_to(SCHEMAS)) for p in SCHEMAS.rglob("*.json")}
    assert on_disk == set(generated), "run `salesflow schemas write` and commit the result"
    notes = [str(f) for f in check(SCHEMAS)]
    assert notes == [], "see docs/how-to/change-a-payload.md"


def test_the_v2_schema_takes_the_new_fields_and_v1_does_not_take_partner() -> None:
    v1 = json.loads((SCHEMAS / "lead.created" / "v1.json").read_text())
    v2 = json.loads((SCHEMAS / "lead.created" / "v2.json").read_text())
    event = event_dict(EventType.LEAD_CREATED, campaign=None)
    partner = {**event, "data": {**event["data"], "source": "partner", "utm": {"source": "g", "campaign": "c"}}}
    jsonschema.validate(partner, v2)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(partner, v1)
    with pytest.raises(jsonschema.ValidationError):  # utm is closed: a member of its own is a new version
        jsonschema.validate({**partner, "data": {**partner["data"], "utm": {"term": "t"}}}, v2)


@pytest.mark.parametrize("event_type", list(EventType))
def test_schemas_accept_valid_events_and_reject_broken_ones(event_type: EventType) -> None:
    schema = json.loads((SCHEMAS / event_type.value / "v1.json").read_text())
    event = event_dict(event_type, extra_field="kept")
    jsonschema.validate(event, schema)
    del event["data"]["lead_id"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(event, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event_dict(event_type), "type": "something.else"}, schema)
