"""JSON Schema files for every event type and version, generated from the models.

``python -m salesflow.domain.schemas schemas`` (or ``make schemas``) rewrites ``schemas/``; a test fails
when the files drift from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from salesflow.domain.events import PAYLOAD_MODELS, CloudEvent
from salesflow.domain.outcome import Outcome

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(event_type: str, version: str) -> dict[str, Any]:
    from salesflow.domain.events import EventType

    model = PAYLOAD_MODELS[(EventType(event_type), version)]
    schema = CloudEvent[model].model_json_schema()  # type: ignore[valid-type]
    schema["properties"]["type"] = {"const": event_type, "title": "Type"}
    schema["title"] = f"{event_type} {version}"
    return {"$schema": SCHEMA_DRAFT, "$id": f"salesflow/{event_type}/{version}.json", **schema}


def all_schemas() -> dict[str, dict[str, Any]]:
    """Relative file path -> schema."""
    files = {f"{t.value}/{v}.json": event_schema(t.value, v) for t, v in PAYLOAD_MODELS}
    files["outcome/v1.json"] = {
        "$schema": SCHEMA_DRAFT,
        "$id": "salesflow/outcome/v1.json",
        **Outcome.model_json_schema(),
    }
    return files


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    written = []
    for relative, schema in all_schemas().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(path)
