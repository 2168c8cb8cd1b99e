"""``salesflow schemas check``: a released schema is immutable, the way a registry guards a subject.

Every file in ``schemas/`` is a released version. For each, the schema the code generates now must be
compatible with it in both directions (``domain.compatibility``: a registry's FULL_TRANSITIVE, since
each released version is checked on its own): a consumer of the file reads data of the code's schema,
and the reverse. A released version may not disappear from the code; a version of the code must have
its file (``salesflow schemas write`` adds it, and never rewrites a released one); and every version
after the first comes with an upcaster from the one before (``domain.upcasting``).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salesflow.domain.compatibility import breaks
from salesflow.domain.events import PAYLOAD_MODELS, EventType
from salesflow.domain.schemas import all_schemas, render
from salesflow.domain.upcasting import UPCASTERS
from salesflow.domain.versions import versions


@dataclass(frozen=True)
class Finding:
    """One thing the check found about ``file``; ``refused`` ones fail it."""

    file: str
    message: str
    refused: bool = True

    def __str__(self) -> str:
        return f"{'refused' if self.refused else 'note'}: {self.file}: {self.message}"


def check(directory: Path) -> list[Finding]:
    """What is wrong (or worth knowing) about the code's schemas against the released files."""
    generated = {name: _as_json(schema) for name, schema in all_schemas().items()}
    released = {str(p.relative_to(directory)): p for p in sorted(directory.rglob("*.json"))}
    findings: list[Finding] = []
    for name, path in released.items():
        if name not in generated:
            findings.append(Finding(name, "a released version is gone from the code; released versions stay forever"))
            continue
        on_file = json.loads(path.read_text())
        found = breaks(on_file, generated[name])
        findings += [Finding(name, str(b)) for b in found]
        if not found and on_file != generated[name]:
            findings.append(
                Finding(name, "differs from the code's schema in annotations only; kept as released", False)
            )
    for name in sorted(generated.keys() - released.keys()):
        findings.append(Finding(name, "a version of the code with no file in schemas/: run `salesflow schemas write`"))
    return findings + _missing_upcasters()


def _missing_upcasters() -> list[Finding]:
    missing = []
    for event_type in EventType:
        listed = versions(event_type)
        for before, after in itertools.pairwise(listed):
            step = UPCASTERS.get(PAYLOAD_MODELS[(event_type, before)])
            if step is None or step[0] is not PAYLOAD_MODELS[(event_type, after)]:
                message = f"no upcaster from {before} to {after} (add it to domain.upcasting.UPCASTERS)"
                missing.append(Finding(f"{event_type.value}/{after}.json", message))
    return missing


def _as_json(schema: dict[str, Any]) -> Any:
    """The schema as its file would hold it (tuples as lists, and so on)."""
    return json.loads(render(schema))
