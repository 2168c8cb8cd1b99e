"""The JSON Schema files in ``schemas/`` are generated from the models; they must not drift."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from salesflow.domain.events import EventType
from salesflow.domain.schemas import all_schemas, render
from salesflow.testing.factories import event_dict

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_schema_files_match_the_models() -> None:
    generated = all_schemas()
    on_disk = {str(p.relative_to(SCHEMAS)) for p in SCHEMAS.rglob("*.json")}
    assert on_disk == set(generated), "run `make schemas` and commit the result"
    for relative, schema in generated.items():
        assert (SCHEMAS / relative).read_text() == render(schema), f"{relative} drifted: run `make schemas`"


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
