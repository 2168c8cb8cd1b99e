"""A trace as a text tree, from the Jaeger query API's JSON (``GET /api/traces/<trace id>``).

Each line: the span's name, its service, when it started after the trace's first span and how long
it took, and the attributes an SRE looks for (event id, type, status, handler, dead-letter reason).
"""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from typing import Any

SHOWN = (
    "cloudevents.event_id",
    "cloudevents.event_type",
    "salesflow.status",
    "salesflow.dead_letter.reason",
    "http.response.status_code",
    "otel.status_code",
    "error",
)


def fetch_trace(ui_url: str, trace_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The trace from Jaeger's query API, or None when it does not have it (yet)."""
    try:
        with urllib.request.urlopen(f"{ui_url}/api/traces/{trace_id}", timeout=timeout) as response:
            data = json.load(response).get("data") or []
    except OSError:
        return None
    return data[0] if data else None


def render(trace: dict[str, Any]) -> str:
    """The spans of one Jaeger trace as an indented tree, children in start order."""
    spans = {s["spanID"]: s for s in trace["spans"]}
    services = {pid: p["serviceName"] for pid, p in trace.get("processes", {}).items()}
    children: defaultdict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in spans.values():
        parent = next((r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"), None)
        children[parent if parent in spans else None].append(span)
    origin = min(s["startTime"] for s in spans.values())
    lines: list[str] = []

    def walk(span: dict[str, Any], prefix: str, last: bool, root: bool) -> None:
        branch = "" if root else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _line(span, services, origin))
        below = sorted(children[span["spanID"]], key=lambda s: s["startTime"])
        for index, child in enumerate(below):
            walk(child, prefix + ("" if root else ("   " if last else "│  ")), index == len(below) - 1, False)

    for root in sorted(children[None], key=lambda s: s["startTime"]):
        walk(root, "", True, True)
    return "\n".join(lines)


def _line(span: dict[str, Any], services: dict[str, str], origin: int) -> str:
    tags = {t["key"]: t["value"] for t in span.get("tags", [])}
    shown = ", ".join(f"{key.rsplit('.', 1)[-1]}={tags[key]}" for key in SHOWN if key in tags)
    events = [f["value"] for log in span.get("logs", []) for f in log.get("fields", []) if f["key"] == "event"]
    extra = f"  [{shown}]" if shown else ""
    extra += f"  events: {', '.join(events)}" if events else ""
    links = sum(1 for r in span.get("references", []) if r["refType"] == "FOLLOWS_FROM")
    extra += f"  links: {links}" if links else ""
    service = services.get(span.get("processID", ""), "?")
    at, took = (span["startTime"] - origin) / 1000, span["duration"] / 1000
    return f"{span['operationName']}  ({service}, +{at:.1f} ms, {took:.2f} ms){extra}"
