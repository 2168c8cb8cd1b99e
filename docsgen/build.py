"""Every generated page of the site, by path under ``docs/``; ``docs/gen_pages.py`` writes them into
the build (``mkdocs-gen-files``), and ``python -m docsgen.build DIR`` writes them to a folder."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from docsgen import cli_ref, observability_ref, openapi_ref, reasons_ref, settings_ref

PAGES: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_ref.render,
    "reference/settings.md": settings_ref.render,
    "reference/http-api.md": openapi_ref.render,
    "reference/openapi.json": openapi_ref.document_json,
    "reference/observability.md": observability_ref.render,
    "reference/statuses-and-reasons.md": reasons_ref.render,
}


def pages() -> dict[str, str]:
    """Each generated file's text, by its path in the site."""
    return {path: render() for path, render in PAGES.items()}


def main(argv: list[str]) -> None:
    target = Path(argv[0] if argv else "build/docs-reference")
    for path, text in pages().items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text)
        print(target / path)


if __name__ == "__main__":
    main(sys.argv[1:])
