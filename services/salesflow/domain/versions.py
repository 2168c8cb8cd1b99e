"""Payload versions: what ``dataschema`` names, and which versions each event type has.

CloudEvents 1.0 makes ``dataschema`` a URI of the schema the data adheres to. Ours end in the version:
``urn:salesflow:schema:lead.created:v2`` (what the typed producers send), or any URI whose last segment
is ``v2`` or ``v2.json`` (``https://example.com/schemas/lead.created/v2.json``, or the schema file's
own ``$id``, ``salesflow/lead.created/v2.json``). The bare ``v1`` of the first producers is still read,
and no ``dataschema`` at all means ``v1``. A URI that names an event type names the event's own type:
``.../message.sent/v1.json`` on a ``lead.created`` event is refused, not guessed at.
"""

from __future__ import annotations

import re
from functools import lru_cache

from salesflow.domain.events import DEFAULT_SCHEMA_VERSION, PAYLOAD_MODELS, EventType, Payload

URI_PREFIX = "urn:salesflow:schema:"
_TYPES = frozenset(t.value for t in EventType)
_VERSION = re.compile(r"v[1-9][0-9]{0,5}")


def schema_uri(event_type: EventType, version: str) -> str:
    """The ``dataschema`` a producer sends for ``version`` of ``event_type``."""
    return f"{URI_PREFIX}{event_type.value}:{version}"


def version_named(event_type: EventType, dataschema: str) -> str | None:
    """The version a ``dataschema`` value names for an event of ``event_type`` (``v2``), or None when
    it names none, or names another event type."""
    rest, last = _split_last(dataschema)
    version = last.removesuffix(".json")
    if not _VERSION.fullmatch(version):
        return None
    named_type = _split_last(rest)[1]
    if named_type in _TYPES and named_type != event_type.value:
        return None
    return version


def _split_last(text: str) -> tuple[str, str]:
    """``a/b:c`` -> (``a/b``, ``c``): the last segment after a "/" (a URL, a path) or ":" (a URN)."""
    cut = max(text.rfind("/"), text.rfind(":"))
    return text[: max(cut, 0)], text[cut + 1 :]


# Keyed by the text a producer sent: bounded, since a hostile producer can send any number of them.
@lru_cache(maxsize=1024)
def model_for(event_type: EventType, dataschema: str | None) -> type[Payload] | None:
    """The payload struct of the version ``dataschema`` names (None: no ``dataschema``, so v1), or None
    when there is no such version."""
    version = DEFAULT_SCHEMA_VERSION if dataschema is None else version_named(event_type, dataschema)
    return None if version is None else PAYLOAD_MODELS.get((event_type, version))


def versions(event_type: EventType) -> tuple[str, ...]:
    """The released versions of ``event_type``, oldest first."""
    return tuple(sorted((v for t, v in PAYLOAD_MODELS if t is event_type), key=version_number))


def latest(event_type: EventType) -> str:
    return versions(event_type)[-1]


def version_number(version: str) -> int:
    """``v12`` -> 12 (so that v10 sorts after v9)."""
    return int(version.removeprefix("v"))
