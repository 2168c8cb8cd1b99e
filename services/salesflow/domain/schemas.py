"""JSON Schema files for every event type and version, generated from the models.

``python -m salesflow.domain.schemas schemas`` (or ``make schemas``, or ``salesflow schemas write``) writes
the file of each new version into ``schemas/``; a file there is a released version, never rewritten, and
``salesflow schemas check`` (``domain.schema_check``) refuses a change of the code that breaks it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from salesflow.domain.events import PAYLOAD_MODELS, CloudEvent, EventType
from salesflow.domain.limits import EXTRA_NAMES_SCHEMA, EXTRA_VALUE_SCHEMA
from salesflow.domain.outcome import Outcome

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(event_type: str, version: str) -> dict[str, Any]:
    model = PAYLOAD_MODELS[(EventType(event_type), version)]
    schema = _inlined(msgspec.json.schema(CloudEvent[model]))  # type: ignore[valid-type]
    schema["properties"]["type"] = {"const": event_type, "title": "Type"}
    schema["title"] = f"{event_type} {version}"
    schema["description"] = (
        f"A CloudEvents 1.0 envelope (structured JSON mode) carrying a {event_type} {version} payload."
    )
    for definition in (schema, schema["$defs"][model.__name__]):
        _open(definition)
    return {"$schema": SCHEMA_DRAFT, "$id": f"salesflow/{event_type}/{version}.json", **schema}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec's ``{"$ref": ..., "$defs": ...}`` with the referenced root definition at the top."""
    definitions = dict(schema["$defs"])
    root = definitions.pop(schema["$ref"].rsplit("/", 1)[-1])
    return {**root, "$defs": definitions} if definitions else root


def _open(definition: dict[str, Any]) -> None:
    """An envelope's or payload's schema: extra members allowed within their limits (the struct keeps
    them in a field of its own whose JSON name, the empty string, is not a member)."""
    definition["properties"].pop("", None)
    definition["additionalProperties"] = EXTRA_VALUE_SCHEMA
    definition["propertyNames"] = EXTRA_NAMES_SCHEMA


def all_schemas() -> dict[str, dict[str, Any]]:
    """Relative file path -> schema."""
    files = {f"{t.value}/{v}.json": event_schema(t.value, v) for t, v in PAYLOAD_MODELS}
    files["outcome/v1.json"] = {
        "$schema": SCHEMA_DRAFT,
        "$id": "salesflow/outcome/v1.json",
        **_inlined(msgspec.json.schema(Outcome)),
    }
    return files


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    """Write the schema file of each version that has none yet. A file that exists is a released
    version and is never rewritten (``salesflow schemas check`` compares it with the code)."""
    written = []
    for relative, schema in all_schemas().items():
        path = directory / relative
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(path)
