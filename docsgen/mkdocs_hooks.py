"""MkDocs hooks: the runbooks' nav is every page under ``docs/runbooks/`` (the alerts add them), so a new
runbook is in the site, and checked by ``mkdocs build --strict``, without editing ``mkdocs.yml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RUNBOOKS_TITLE = "Runbooks"
SHARED = {"README.md": "All runbooks", "replay.md": "Replay"}


def runbooks_nav(docs_dir: Path) -> list[Any]:
    """The index and the replay procedure first, then one page per alert, by name."""
    pages = sorted(p.name for p in (docs_dir / "runbooks").glob("*.md") if p.name not in SHARED)
    shared = [{title: f"runbooks/{name}"} for name, title in SHARED.items() if (docs_dir / "runbooks" / name).exists()]
    return [*shared, *({name.removesuffix(".md"): f"runbooks/{name}"} for name in pages)]


def fill(nav: list[Any], docs_dir: Path) -> None:
    """Replace the ``Runbooks`` entry's placeholder, wherever it is in the nav, with the pages found."""
    for item in nav:
        if not isinstance(item, dict):
            continue
        for title, value in item.items():
            if title == RUNBOOKS_TITLE:
                item[title] = runbooks_nav(docs_dir)
            elif isinstance(value, list):
                fill(value, docs_dir)


def on_config(config: Any) -> Any:
    fill(config["nav"], Path(config["docs_dir"]))
    return config
