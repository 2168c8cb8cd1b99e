"""Is a JSON Schema still compatible with another, in both directions? The rules of a registry's FULL mode.

``breaks(old, new)`` lists each change that breaks a reader: ``backward`` when a consumer of ``new``
refuses data valid under ``old`` (old records on the topic), ``forward`` when a consumer of ``old``
refuses data valid under ``new`` (a worker not yet upgraded). FULL compatibility, a Confluent Schema
Registry's or Karapace's ``FULL_TRANSITIVE`` applied to each released version, allows neither.
The rule names are those of Confluent's JSON Schema checker (``TYPE_NARROWED``,
``REQUIRED_PROPERTY_ADDED``, ``MAX_LENGTH_DECREASED``, ...) so that a reader who knows one knows both.

Written here rather than taken from a library: ``jsoncompat`` 0.5.0 needs Python 3.12 (we run 3.11)
and answers a bare true or false, with no path or rule; Karapace's checker is part of its server.
What is covered: the keywords our generated schemas use (msgspec's output: ``type``, ``enum``,
``const``, ``anyOf``, ``$ref`` into ``$defs``, object and array keywords, string and number limits,
``pattern``, ``format`` and ajv's ``formatMinimum``-style bounds, ``default``); any other keyword that
differs is reported as ``KEYWORD_CHANGED``, never passed silently. Annotations (``title``,
``description``, ``examples``) never break a reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["backward", "forward", "both"]

ANNOTATIONS = frozenset({"title", "description", "examples", "$comment", "$id", "$schema", "$defs", "deprecated"})
_OBJECT = frozenset({"properties", "required", "additionalProperties", "propertyNames"})
# Upper bounds: lower one, or add one, and old data may be refused (backward); the reverse, forward.
_MAXIMA = frozenset(
    {"maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties", "formatMaximum", "formatExclusiveMaximum"}
)
_MINIMA = frozenset(
    {"minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties", "formatMinimum", "formatExclusiveMinimum"}
)
_DEPTH_MAX = 64  # our schemas nest a few levels; deeper is a recursive definition, not compared
_EXACT = ("pattern", "format", "multipleOf", "uniqueItems")
_HANDLED = (
    ANNOTATIONS
    | _OBJECT
    | {"type", "enum", "const", "anyOf", "oneOf", "items", "prefixItems", "default", "$ref"}
    | _MAXIMA
    | _MINIMA
    | set(_EXACT)
)
_READS = {
    "backward": "a consumer of the new schema refuses data of the old one",
    "forward": "a consumer of the old schema refuses data of the new one",
    "both": "readers of either schema refuse data of the other",
}


@dataclass(frozen=True)
class Break:
    """One incompatible change: where (a dotted path into the JSON document), which rule, and why."""

    path: str
    rule: str
    detail: str
    direction: Direction

    def __str__(self) -> str:
        return f"{self.path or '(the document)'}: {self.rule}: {self.detail} ({_READS[self.direction]})"


def breaks(old: dict[str, Any], new: dict[str, Any]) -> list[Break]:
    """Every change from ``old`` to ``new`` that is not compatible both ways (empty: FULL compatible)."""
    return _Compare(old, new).node(old, new, "")


@dataclass(frozen=True)
class _Compare:
    old_root: dict[str, Any]
    new_root: dict[str, Any]

    def node(self, old: Any, new: Any, path: str) -> list[Break]:
        old, new = _schema(_resolve(old, self.old_root)), _schema(_resolve(new, self.new_root))
        if path.count(".") + path.count("[") + path.count("{") > _DEPTH_MAX:
            raise ValueError(f"{path[:200]}: nested deeper than {_DEPTH_MAX} levels (a recursive $ref?)")
        if "anyOf" in old or "anyOf" in new or "oneOf" in old or "oneOf" in new:
            return self._union(old, new, path)
        found = _types(old, new, path) + _enum(old, new, path) + _bounds(old, new, path) + _others(old, new, path)
        if _OBJECT & (old.keys() | new.keys()):
            found += self._object(old, new, path)
        if "items" in old or "items" in new:
            found += self.node(old.get("items", True), new.get("items", True), f"{path}[]")
        for n, (o, w) in enumerate(zip(old.get("prefixItems", []), new.get("prefixItems", []), strict=False)):
            found += self.node(o, w, f"{path}[{n}]")
        return found

    def _union(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[Break]:
        """``anyOf`` branches matched by kind (``string``, ``null``, ``enum``...), each pair compared."""
        old_branches, old_rest = _branches(old, self.old_root)
        new_branches, new_rest = _branches(new, self.new_root)
        found = _others(old_rest, new_rest, path)
        for kind in old_branches.keys() - new_branches.keys():
            found.append(Break(path, "TYPE_NARROWED", f"{kind} is no longer accepted", "backward"))
        for kind in new_branches.keys() - old_branches.keys():
            found.append(Break(path, "TYPE_EXTENDED", f"{kind} is accepted now", "forward"))
        for kind in old_branches.keys() & new_branches.keys():
            found += self.node(old_branches[kind], new_branches[kind], path)
        return found

    def _object(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[Break]:
        found: list[Break] = []
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name in sorted(new_required - old_required):
            found.append(Break(_at(path, name), "REQUIRED_PROPERTY_ADDED", "old data may lack it", "backward"))
        for name in sorted(old_required - new_required):
            found.append(Break(_at(path, name), "REQUIRED_PROPERTY_REMOVED", "new data may lack it", "forward"))
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
        for name in sorted(old_props.keys() & new_props.keys()):
            found += self.node(old_props[name], new_props[name], _at(path, name))
        for name in sorted(new_props.keys() - old_props.keys()):
            found += self._moved(old_extra, new_props[name], _at(path, name), "ADDED_TO")
        for name in sorted(old_props.keys() - new_props.keys()):
            found += self._moved(old_props[name], new_extra, _at(path, name), "REMOVED_FROM")
        found += self._additional(old_extra, new_extra, f"{path}{{*}}")
        if "propertyNames" in old or "propertyNames" in new:
            found += self.node(old.get("propertyNames", True), new.get("propertyNames", True), f"{path}{{names}}")
        return found

    def _moved(self, old: Any, new: Any, path: str, how: str) -> list[Break]:
        """A property added (or removed): what was an extra field under ``additionalProperties`` is now
        declared (or the reverse). Compatible only when the two schemas accept the same values."""
        closed = new is False if how == "REMOVED_FROM" else old is False
        if closed:
            direction: Direction = "backward" if how == "REMOVED_FROM" else "forward"
            detail = "the other side's content model is closed (additionalProperties: false)"
            return [Break(path, f"PROPERTY_{how}_CLOSED_CONTENT_MODEL", detail, direction)]
        inner = self.node(old, new, path)
        if not inner:
            return []
        rules = ", ".join(sorted({b.rule for b in inner}))
        detail = f"it is an extra field on the other side (additionalProperties), with other rules: {rules}"
        return [Break(path, f"PROPERTY_{how}_OPEN_CONTENT_MODEL", detail, _direction(inner))]

    def _additional(self, old: Any, new: Any, path: str) -> list[Break]:
        if old is False and new is not False:
            return [Break(path, "ADDITIONAL_PROPERTIES_EXTENDED", "extra fields are allowed now", "forward")]
        if new is False and old is not False:
            return [Break(path, "ADDITIONAL_PROPERTIES_NARROWED", "extra fields are refused now", "backward")]
        return [] if old is False else self.node(old, new, path)


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    """Follow local ``$ref``s (``#/$defs/Name``), as msgspec writes them."""
    for _ in range(64):
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    raise ValueError("a $ref chain longer than 64 steps")


def _schema(node: Any) -> dict[str, Any]:
    """A schema as a dict: ``true`` is ``{}`` (anything); ``false``, nothing (an empty enum)."""
    if node is True:
        return {}
    if node is False:
        return {"enum": []}
    return dict(node)


def _branches(node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ``anyOf``'s branches by kind, and the keywords beside it; a plain schema is one branch."""
    if "anyOf" in node or "oneOf" in node:
        listed = node.get("anyOf", node.get("oneOf", []))
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
    else:
        listed = [{k: v for k, v in node.items() if k != "default" and k not in ANNOTATIONS}]
        rest = {k: v for k, v in node.items() if k == "default" or k in ANNOTATIONS}
    by_kind = {}
    for branch in listed:
        resolved = _schema(_resolve(branch, root))
        by_kind[_kind(resolved)] = branch
    return by_kind, rest


def _kind(schema: dict[str, Any]) -> str:
    if "enum" in schema or "const" in schema:
        return "an enum value"
    kind = schema.get("type", "any value")
    return "/".join(sorted(kind)) if isinstance(kind, list) else str(kind)


def _types(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Break]:
    def listed(schema: dict[str, Any]) -> set[str] | None:
        kind = schema.get("type")
        return None if kind is None else set(kind) if isinstance(kind, list) else {kind}

    def covered(kind: str, kinds: set[str] | None) -> bool:
        return kinds is None or kind in kinds or (kind == "integer" and "number" in kinds)

    old_types, new_types = listed(old), listed(new)
    if old_types == new_types:
        return []
    if old_types is None or new_types is None:
        narrowed = old_types is None
        rule, detail = (
            ("TYPE_NARROWED", "accepts only") if narrowed else ("TYPE_EXTENDED", "accepts any type, not only")
        )
        kinds = ", ".join(sorted(new_types or old_types or ()))
        return [Break(path, rule, f"{detail} {kinds}", "backward" if narrowed else "forward")]
    found = []
    lost = sorted(t for t in old_types if not covered(t, new_types))
    gained = sorted(t for t in new_types if not covered(t, old_types))
    if lost:
        found.append(Break(path, "TYPE_NARROWED", f"no longer accepts {', '.join(lost)}", "backward"))
    if gained:
        found.append(Break(path, "TYPE_EXTENDED", f"accepts {', '.join(gained)} now", "forward"))
    return found


def _enum(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Break]:
    if "enum" not in old and "enum" not in new:
        return []
    if "enum" not in new:
        return [Break(path, "ENUM_REMOVED", "any value is accepted now", "forward")]
    if "enum" not in old:
        return [Break(path, "ENUM_ADDED", "only the listed values are accepted now", "backward")]
    old_values, new_values = set(map(json.dumps, old["enum"])), set(map(json.dumps, new["enum"]))
    found = []
    if old_values - new_values:
        removed = ", ".join(sorted(old_values - new_values))
        found.append(Break(path, "ENUM_ARRAY_NARROWED", f"no longer accepts {removed}", "backward"))
    if new_values - old_values:
        added = ", ".join(sorted(new_values - old_values))
        found.append(Break(path, "ENUM_ARRAY_EXTENDED", f"accepts {added} now", "forward"))
    return found


def _bounds(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Break]:
    found = []
    for key in sorted(_MAXIMA | _MINIMA):
        was, now = old.get(key), new.get(key)
        if was == now:
            continue
        upper = key in _MAXIMA
        rule = _snake(key)
        if was is None or now is None:
            tightened = was is None
            rule += "_ADDED" if tightened else "_REMOVED"
        else:
            tightened = now < was if upper else now > was
            rule += "_DECREASED" if now < was else "_INCREASED"
        found.append(Break(path, rule, f"{key} {was} -> {now}", "backward" if tightened else "forward"))
    return found


def _others(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Break]:
    """Exact keywords (``pattern``, ``format``, ...), ``const``, ``default``, and any keyword this
    checker does not know: a difference in them is a break, unless it only annotates."""
    found = []
    for key in sorted((old.keys() | new.keys()) - ANNOTATIONS):
        if key not in _EXACT and key not in ("const", "default") and key in _HANDLED:
            continue
        was, now = old.get(key), new.get(key)
        if was == now:
            continue
        if key in _EXACT or key == "const":
            rule = _snake(key) + ("_ADDED" if was is None else "_REMOVED" if now is None else "_CHANGED")
            direction: Direction = "backward" if was is None else "forward" if now is None else "both"
        else:  # a new default changes what readers of absent fields see; an unknown keyword: be safe
            rule = "DEFAULT_CHANGED" if key == "default" else "KEYWORD_CHANGED"
            direction = "both"
        found.append(Break(path, rule, f"{key} {json.dumps(was)} -> {json.dumps(now)}", direction))
    return found


def _direction(found: list[Break]) -> Direction:
    directions = {b.direction for b in found}
    return directions.pop() if len(directions) == 1 else "both"


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _snake(key: str) -> str:
    return "".join(f"_{c}" if c.isupper() else c.upper() for c in key)
