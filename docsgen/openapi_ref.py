"""The HTTP API reference: the OpenAPI document of ``api/app.py`` ``create_app``, rendered as pages
(no JavaScript viewer: the site works offline), and the document itself beside them."""

from __future__ import annotations

import json
from typing import Any

from docsgen.markdown import code, generated_note, table

METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """The document the API serves at ``/openapi.json``; building the app connects to nothing."""
    from salesflow.api.api_settings import ApiSettings
    from salesflow.api.app import create_app
    from salesflow.settings import Settings

    document: dict[str, Any] = create_app(Settings(), ApiSettings()).openapi()
    return document


def schema_type(schema: dict[str, Any]) -> str:
    """A short type for a JSON Schema: ``string (uuid)``, ``array of Event``, ``A or B``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(schema_type(s) for s in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(code(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _parameters(operation: dict[str, Any]) -> str:
    rows = [
        (
            code(p["name"]),
            p["in"],
            schema_type(p.get("schema", {})),
            "yes" if p.get("required") else "",
            p.get("description", p.get("schema", {}).get("description", "")),
        )
        for p in operation.get("parameters", [])
    ]
    return table(["parameter", "in", "type", "required", "description"], rows) + "\n" if rows else ""


def _responses(operation: dict[str, Any]) -> str:
    rows = []
    for status, response in operation.get("responses", {}).items():
        body = response.get("content", {}).get("application/json", {}).get("schema")
        rows.append((code(status), response.get("description", ""), schema_type(body) if body else ""))
    return table(["status", "meaning", "body"], rows) + "\n"


def render_operation(path: str, method: str, operation: dict[str, Any]) -> str:
    """One endpoint: its summary, description, parameters, body and responses."""
    parts = [f"### `{method.upper()} {path}`\n\n"]
    if operation.get("summary"):
        parts.append(f"**{operation['summary']}**\n\n")
    if operation.get("description"):
        parts.append(f"{operation['description']}\n\n")
    parts.append(_parameters(operation))
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body:
        parts.append(f"Request body: {schema_type(body)}.\n\n")
    parts.append(_responses(operation))
    return "".join(parts)


def render_schema(name: str, schema: dict[str, Any]) -> str:
    """One component schema: its fields, types and whether they are required."""
    required = set(schema.get("required", []))
    rows = [
        (code(field), schema_type(spec), "yes" if field in required else "", spec.get("description", ""))
        for field, spec in schema.get("properties", {}).items()
    ]
    text = f"### {name}\n\n{schema.get('description', '')}\n\n"
    return text + (table(["field", "type", "required", "description"], rows) + "\n" if rows else "")


def render(document: dict[str, Any] | None = None) -> str:
    """The whole page."""
    document = document or openapi_document()
    info = document["info"]
    parts = [
        f"# HTTP API\n\n{generated_note('docsgen/openapi_ref.py')}",
        f"{info['title']} {info['version']}. The document itself: [openapi.json](openapi.json) "
        "(also served by `salesflow api` at `/openapi.json`, and printed by `salesflow api --openapi`).\n\n",
        f"{info.get('description', '')}\n\n## Endpoints\n\n",
    ]
    for path, item in document["paths"].items():
        parts += [render_operation(path, m, item[m]) for m in METHODS if m in item]
    parts.append("## Schemas\n\n")
    schemas = document.get("components", {}).get("schemas", {})
    parts += [render_schema(name, schema) for name, schema in schemas.items()]
    return "".join(parts)


def document_json(document: dict[str, Any] | None = None) -> str:
    return json.dumps(document or openapi_document(), indent=2) + "\n"
