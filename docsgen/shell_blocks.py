"""The shell blocks of the docs, and the scripts that run them in CI.

A fenced block is marked by an HTML comment on the line before it (invisible on the site):
``<!-- ci -->`` runs it in CI, in page order, as one bash script per page (a block with a
``title="path"`` and no shell language is written to that path first); ``<!-- ci: tested by
tests/... -->`` is run by that test; ``<!-- needs: ... -->`` says what it needs that CI does not have
(a Kubernetes cluster, a secured cluster). Every shell block of the tutorial and how-tos is marked."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SHELLS = {"bash", "sh", "shell", "console", "zsh"}
MARKER = re.compile(r"^<!--\s*(ci|needs)\s*(?::\s*(.*?))?\s*-->$")
FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)(.*)$")
TITLE = re.compile(r'title="([^"]+)"')


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based, of the opening fence
    language: str
    title: str | None
    body: str
    marker: str | None  # "ci", "needs" or None
    note: str  # what follows the marker's colon

    @property
    def is_shell(self) -> bool:
        return self.language in SHELLS

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, with the marker on the line before it (if any)."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index].strip())
        if opening is None:
            index += 1
            continue
        fence, end = opening.group(1), index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        previous = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        marker = MARKER.match(previous)
        title = TITLE.search(opening.group(3))
        found.append(
            Block(
                page=page,
                line=index + 1,
                language=opening.group(2).lower(),
                title=title.group(1) if title else None,
                body="\n".join(lines[index + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
                note=(marker.group(2) or "") if marker else "",
            )
        )
        index = end + 1
    return found


def unmarked_shell_blocks(pages: list[Path]) -> list[str]:
    """Shell blocks with no marker: neither run in CI nor said to need something CI lacks."""
    return [b.where for page in pages for b in blocks(page) if b.is_shell and b.marker is None]


def script(page: Path) -> str:
    """The page's ``<!-- ci -->`` blocks as one bash script, in order; files are written, not run."""
    parts = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for block in blocks(page):
        if block.marker != "ci" or block.note:
            continue
        if block.is_shell:
            parts.append(f"# {block.where}\n{block.body}")
        elif block.title:
            target = shlex.quote(block.title)
            parts.append(
                f"# {block.where}\nmkdir -p \"$(dirname {target})\"\ncat > {target} <<'DOCS_EOF'\n{block.body}DOCS_EOF"
            )
        else:
            raise ValueError(f"{block.where}: a <!-- ci --> block that is neither shell nor has a title=")
    return "\n".join(parts) + "\n"
